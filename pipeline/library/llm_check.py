"""Check an LLM server before a long run: one request per dimension's prompt for one class, straight to the server.

    checks = check_server(llm_params, library_params, "golden retriever", contrast="Labrador retriever")
    print("\n".join(format_checks(checks)))     # latency, tokens and the answer per dimension, and a verdict

Requests go to the server named by the `llm` section (never to the answer cache, and nothing is cached), one at a
time, with no retry, so what fails says why at once: an unreachable server, a timeout (a model still loading), a
rate limit, or (as in a real run) a wrong key, model or URL (HTTP 401/403/404), each as one UserError line. Every
answer is checked as the library stage checks it (pipeline/library/descriptions.py): usable, or why it would be
asked again.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace

from pipeline.config.library_params import LibraryParams, LLMParams
from pipeline.core.errors import UserError
from pipeline.library.descriptions import check_answer, count_clip_tokens
from pipeline.library.llm import LLMClient, RequestFailed
from pipeline.library.prompts import load_template

START_HINTS = "Ollama: `ollama serve`; vLLM: `vllm serve MODEL`; llama.cpp: `llama-server -m MODEL.gguf`"


@dataclass(frozen=True)
class DimensionCheck:
    """One request and its answer."""

    dimension: str
    latency_s: float
    tokens_in: int
    tokens_out: int
    answer: str               # the cleaned answer (what the library would keep)
    problem: str | None       # None when usable as it is, else why the library stage would ask again


def check_server(llm: LLMParams, lib: LibraryParams, class_name: str, contrast: str | None = None
                 ) -> list[DimensionCheck]:
    """Ask the server for one description of `class_name` per dimension of `lib`; UserError when a request fails."""
    count_clip_tokens("")  # load the tokenizer before timing anything
    llm = replace(llm, max_retries=0)
    where = llm.base_url or "api.openai.com"

    async def ask_all() -> list[DimensionCheck]:
        checks = []
        async with LLMClient(llm) as client:
            for dimension in lib.dimensions:
                messages = load_template(dimension).messages(class_name, contrast, 0, 1)
                start = time.perf_counter()
                try:
                    answer = await client.ask_server(messages)
                except RequestFailed as err:
                    raise UserError(failure_line(str(err), dimension, where, llm)) from None
                text, problem = check_answer(class_name, answer.text, answer.finish_reason)
                checks.append(DimensionCheck(dimension, time.perf_counter() - start, answer.tokens_in,
                                             answer.tokens_out, text, problem))
        return checks

    return asyncio.run(ask_all())


def failure_line(error: str, dimension: str, where: str, llm: LLMParams) -> str:
    """One line saying what a failed check request means and what to do."""
    if error.startswith("connection error"):
        return (f"llm-check: cannot reach {where} ({error}); is the server running and llm.base_url right? "
                f"({START_HINTS})")
    if error.startswith("no answer within"):
        return (f"llm-check: {where} gave no answer within llm.timeout_s = {llm.timeout_s} s for the {dimension} "
                "prompt; a model may still be loading: retry, or raise llm.timeout_s.")
    if error.startswith("HTTP 429"):
        return (f"llm-check: {where} is rate limiting ({error}); set llm.requests_per_minute / "
                "llm.tokens_per_minute to the server's limits, or wait and retry.")
    return f"llm-check: the {dimension} request to {where} (model {llm.model!r}) failed: {error}."


def format_checks(checks: list[DimensionCheck], width: int = 100) -> list[str]:
    """One line per dimension (latency, tokens, verdict, the answer cut to `width`), then a summary line."""
    name_width = max(len(check.dimension) for check in checks)
    lines = []
    for check in checks:
        verdict = "ok" if check.problem is None else f"re-ask: {check.problem}"
        answer = check.answer if len(check.answer) <= width else check.answer[:width - 3] + "..."
        lines.append(f"  {check.dimension:<{name_width}}  {check.latency_s:6.2f} s  {check.tokens_in:>5} in "
                     f"{check.tokens_out:>4} out  {verdict}\n  {'':<{name_width}}  {answer!r}")
    usable = sum(check.problem is None for check in checks)
    mean = sum(check.latency_s for check in checks) / len(checks)
    lines.append(f"llm-check: {usable} of {len(checks)} answers usable as they are; mean latency {mean:.2f} s; "
                 f"tokens {sum(c.tokens_in for c in checks)} in, {sum(c.tokens_out for c in checks)} out.")
    return lines
