"""The semantic library: V = len(dimensions) x per_dimension descriptions per class, from one of three backends.

    records, summary = build_library(class_names, contrasts, llm_params, library_params)
    print(format_summary(summary))

Backends (llm.backend): `openai` asks any OpenAI-compatible server (pipeline.llm: cache, concurrency, retries);
`offline` writes deterministic stand-in text from class names (source `offline`); `file` imports a descriptor JSON
(pipeline.descriptor_file). Slot of a description = dimension position x per_dimension + k.

Every LLM answer is cleaned and checked (pipeline.descriptions): empty, refusal, cut off or too long for CLIP's 77
tokens -> asked again (the rejected answer plus a request for a short one: a new cache key) up to
library.max_reasks times, then the offline text is used with source `fallback`. A request that fails after all
retries also falls back. Fallbacks are counted and their classes listed in the summary: never a silent placeholder.

Record fields: see `make_record`. Token fields: tokens spent on that description, re-asks included, as reported by
the server (replayed from the cache on a rerun, so the file does not change); the summary's tokens_in/out count only
what this run sent. A contrast class equal to the class's own name (ImageNet lists 'missile' twice) is treated as
no contrast.
"""
from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import asdict, dataclass, field

from pipeline.descriptions import (check_answer, clip_text, count_clip_tokens, offline_description,
                                   reask_messages)
from pipeline.descriptor_file import file_records, normalise_name
from pipeline.llm import LLMClient, LLMStats, RequestFailed, read_api_key
from pipeline.params import LibraryParams, LLMParams
from pipeline.prompts import load_template

__all__ = ["build_library", "format_summary", "offline_description", "clip_text", "count_clip_tokens"]


@dataclass
class _Outcome:
    reasks: int = 0
    fallbacks: list[tuple[str, str]] = field(default_factory=list)  # (class name, reason)


class _RecordMaker:
    """Builds records for one run (knows the params and the template shas)."""

    def __init__(self, llm: LLMParams, lib: LibraryParams, contrasts: list[str | None]):
        self.llm, self.lib, self.contrasts = llm, lib, contrasts
        self.templates = {dimension: load_template(dimension) for dimension in lib.dimensions}
        self.slots = [(position * lib.per_dimension + k, dimension, k)
                      for position, dimension in enumerate(lib.dimensions) for k in range(lib.per_dimension)]

    def make(self, class_index: int, class_name: str, slot: int, text: str, source: str,
             tokens_in: int = 0, tokens_out: int = 0) -> dict:
        """One library.jsonl record."""
        dimension = self.lib.dimensions[slot // self.lib.per_dimension]
        contrast = self.contrasts[class_index] if dimension == "differential" and source != "file" else None
        return {"class_index": class_index, "class_name": class_name, "dimension": dimension, "slot": slot,
                "text": text, "contrast_class": contrast, "source": source,
                "model": self.llm.model if source in ("llm", "fallback") else None,
                "prompt_sha": None if source == "file" else self.templates[dimension].sha,
                "tokens_in": tokens_in, "tokens_out": tokens_out,
                "clip_tokens": count_clip_tokens(clip_text(class_name, text))}

    def offline_text(self, class_index: int, class_name: str, slot: int) -> str:
        _, dimension, k = self.slots[slot]
        return offline_description(class_name, dimension, self.contrasts[class_index], k)

    def offline(self, class_index: int, class_name: str) -> list[dict]:
        """All V offline records of one class."""
        return [self.make(class_index, class_name, slot, self.offline_text(class_index, class_name, slot), "offline")
                for slot, _, _ in self.slots]


def build_library(class_names: list[str], contrasts: list[str | None], llm: LLMParams, lib: LibraryParams,
                  progress: bool = True) -> tuple[list[dict], dict]:
    """Library records sorted by (class_index, slot), and a summary of what it took."""
    if len(contrasts) != len(class_names):
        raise ValueError(f"{len(contrasts)} contrasts for {len(class_names)} classes")
    contrasts = [None if c is None or normalise_name(c) == normalise_name(n) else c
                 for n, c in zip(class_names, contrasts)]
    maker = _RecordMaker(llm, lib, contrasts)
    stats, outcome, extra = LLMStats(), _Outcome(), {}
    if llm.backend == "offline":
        records = [r for i, name in enumerate(class_names) for r in maker.offline(i, name)]
    elif llm.backend == "file":
        records, extra = file_records(class_names, lib, maker.make, maker.offline)
    else:
        read_api_key(llm)  # UserError before anything else when the variable is unset
        count_clip_tokens("")  # load the tokenizer now, not inside the event loop while answers arrive
        records, stats = asyncio.run(_ask_all(class_names, maker, outcome, progress))
    records.sort(key=lambda r: (r["class_index"], r["slot"]))
    summary = {"backend": llm.backend, "classes": len(class_names), "descriptions": len(records),
               "absent_slots": len(class_names) * len(maker.slots) - len(records),
               "by_source": dict(sorted(Counter(r["source"] for r in records).items())),
               **asdict(stats), "reasks": outcome.reasks, "fallbacks": len(outcome.fallbacks),
               "fallback_classes": sorted({name for name, _ in outcome.fallbacks}),
               "fallback_reasons": dict(sorted(Counter(_reason_kind(r) for _, r in outcome.fallbacks).items())),
               **extra}
    return records, summary


async def _ask_all(class_names, maker: _RecordMaker, outcome: _Outcome, progress: bool):
    """Ask for every (class, slot) concurrently; records in job order and the client's stats."""
    from tqdm import tqdm

    jobs = [(i, name, slot) for i, name in enumerate(class_names) for slot, _, _ in maker.slots]
    with tqdm(total=len(jobs), desc="library", unit="desc", disable=not progress, leave=False) as bar:
        async with LLMClient(maker.llm) as client:
            async def one(job):
                record = await _describe(client, maker, outcome, *job)
                bar.update()
                return record

            tasks = [asyncio.ensure_future(one(job)) for job in jobs]
            try:
                records = await asyncio.gather(*tasks)
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
    return list(records), client.stats


async def _describe(client: LLMClient, maker: _RecordMaker, outcome: _Outcome, class_index: int, name: str,
                    slot: int) -> dict:
    """One description: ask, validate, re-ask up to max_reasks times, else fall back to the offline text."""
    _, dimension, k = maker.slots[slot]
    messages = maker.templates[dimension].messages(name, maker.contrasts[class_index], k, maker.lib.per_dimension)
    tokens_in = tokens_out = 0
    for ask in range(maker.lib.max_reasks + 1):
        try:
            answer = await client.complete(messages)
        except RequestFailed as err:
            reason = f"request failed: {err}"
            break
        tokens_in, tokens_out = tokens_in + answer.tokens_in, tokens_out + answer.tokens_out
        text, reason = check_answer(name, answer.text, answer.finish_reason)
        if reason is None:
            return maker.make(class_index, name, slot, text, "llm", tokens_in, tokens_out)
        if ask < maker.lib.max_reasks:
            outcome.reasks += 1
            messages = reask_messages(messages, answer.text, reason, name)
    outcome.fallbacks.append((name, reason))
    text = maker.offline_text(class_index, name, slot)
    return maker.make(class_index, name, slot, text, "fallback", tokens_in, tokens_out)


def _reason_kind(reason: str) -> str:
    """'it is too long for CLIP (95 tokens...)' -> 'it is too long for CLIP'; 'request failed: HTTP 500' -> 'request failed'."""
    return re.split(r"[(:]", reason)[0].strip()


def format_summary(summary: dict, output: str | None = None) -> str:
    """The summary as one line for the terminal."""
    sources = ", ".join(f"{source} {count}" for source, count in summary["by_source"].items()) or "none"
    line = (f"library: {summary['descriptions']} descriptions for {summary['classes']} classes ({sources}; "
            f"{summary['absent_slots']} slots absent) | backend {summary['backend']}")
    if summary["backend"] == "openai":
        line += (f" | requests {summary['requests']}, cache hits {summary['cache_hits']}, retries {summary['retries']}, "
                 f"failures {summary['failures']}, re-asks {summary['reasks']} | tokens {summary['tokens_in']} in, "
                 f"{summary['tokens_out']} out")
        if summary["model_mismatches"]:
            line += f" | answers from another model name: {summary['model_mismatches']}"
    if summary["fallbacks"]:
        classes = summary["fallback_classes"]
        shown = ", ".join(classes[:10]) + (f" and {len(classes) - 10} more" if len(classes) > 10 else "")
        reasons = ", ".join(f"{kind} {n}" for kind, n in summary["fallback_reasons"].items())
        line += f" | FALLBACKS {summary['fallbacks']} ({reasons}) in: {shown}"
    if summary["backend"] == "file":
        line += (f" | missing classes {summary['missing_classes']}, truncated {summary['truncated']}, "
                 f"dropped {summary['dropped']}")
    return line + (f" -> {output}" if output else "")
