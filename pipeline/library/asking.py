"""The `openai` backend: ask an OpenAI-compatible server for every (class, slot) description, concurrently.

    records, summary = ask_llm(class_names, maker, progress=True)

Every answer is cleaned and checked (pipeline/library/descriptions.py): empty, refusal, cut off or too long for
CLIP's 77 tokens -> asked again (the rejected answer plus a request for a short one: a new cache key) up to
library.max_reasks times, then the offline text is used with source `fallback`. A request that fails after all
retries also falls back. Fallbacks are counted, with their classes and causes, in the summary: never a silent
placeholder. Causes: `HTTP <status>`, `timeout`, `connection error`, `malformed response` (failed requests) and
`rejected: <why>` (answers still unusable after the re-asks). The client (pipeline/library/llm.py) caches every
answer, so a rerun makes zero requests; `library.max_fallback_fraction` (pipeline/library/build.py) fails the stage
when too many descriptions fell back.
"""
from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import asdict, dataclass, field

from pipeline.library.descriptions import check_answer, count_clip_tokens, reask_messages
from pipeline.library.llm import LLMClient, RequestFailed, read_api_key
from pipeline.library.records import RecordMaker


@dataclass
class Outcome:
    """What validation did across one run."""

    reasks: int = 0
    fallbacks: list[tuple[str, str]] = field(default_factory=list)  # (class name, cause)


def ask_llm(class_names: list[str], maker: RecordMaker, progress: bool) -> tuple[list[dict], dict]:
    """Records of every (class, slot) in job order, and the summary fields of the run (client stats, fallbacks)."""
    read_api_key(maker.llm)  # UserError before anything else when the variable is unset
    count_clip_tokens("")  # load the tokenizer now, not inside the event loop while answers arrive
    outcome = Outcome()
    records, stats = asyncio.run(_ask_all(class_names, maker, outcome, progress))
    return records, {**asdict(stats), "reasks": outcome.reasks, "fallbacks": len(outcome.fallbacks),
                     "fallback_classes": sorted({name for name, _ in outcome.fallbacks}),
                     "fallback_reasons": _by_count(Counter(cause for _, cause in outcome.fallbacks))}


async def _ask_all(class_names, maker: RecordMaker, outcome: Outcome, progress: bool):
    """Ask for every (class, slot) concurrently; records in job order and the client's stats."""
    from tqdm import tqdm

    jobs = [(i, name, slot) for i, name in enumerate(class_names) for slot, _, _ in maker.slots]
    async with LLMClient(maker.llm) as client:  # opens (and checks) the answer cache before the progress bar
        with tqdm(total=len(jobs), desc="library", unit="desc", disable=not progress, leave=False) as bar:
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


async def _describe(client: LLMClient, maker: RecordMaker, outcome: Outcome, class_index: int, name: str,
                    slot: int) -> dict:
    """One description: ask, validate, re-ask up to max_reasks times, else fall back to the offline text."""
    messages = maker.messages(class_index, name, slot)
    tokens_in = tokens_out = 0
    for ask in range(maker.lib.max_reasks + 1):
        try:
            answer = await client.complete(messages)
        except RequestFailed as err:
            cause = err.cause
            break
        tokens_in, tokens_out = tokens_in + answer.tokens_in, tokens_out + answer.tokens_out
        text, reason = check_answer(name, answer.text, answer.finish_reason)
        if reason is None:
            return maker.make(class_index, name, slot, text, "llm", tokens_in, tokens_out)
        cause = f"rejected: {_reason_kind(reason)}"
        if ask < maker.lib.max_reasks:
            outcome.reasks += 1
            messages = reask_messages(messages, answer.text, reason, name)
    outcome.fallbacks.append((name, cause))
    text = maker.offline_text(class_index, name, slot)
    return maker.make(class_index, name, slot, text, "fallback", tokens_in, tokens_out)


def _by_count(counts: Counter) -> dict[str, int]:
    """Causes, the most frequent first (ties by name), whatever order the answers arrived in."""
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _reason_kind(reason: str) -> str:
    """'it is too long for CLIP (95 tokens, ...)' -> 'too long for CLIP'; 'it was empty' -> 'empty'."""
    return re.sub(r"^it (is|was) ", "", re.split(r"[(:,]", reason)[0].strip())
