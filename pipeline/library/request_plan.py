"""What the library stage will ask the LLM, counted without asking: requests, tokens, wall time, price.

    maker = record_maker(names, contrasts, llm, lib, taxonomy)             # pipeline/library/build.py
    plan = plan_requests(names, maker, cache)           # RequestPlan: requests left, cache hits, tokens
    seconds = wall_time_s(plan, llm, latency_s=2.0)     # under llm.requests_per_minute / tokens_per_minute
    cost = price(plan, 0.15, 0.60)                      # per million prompt / completion tokens (None: no price)

`plan_requests` renders every (class, slot) request exactly as `mdpr library` does (RecordMaker.messages), keys it
like the client (answer_cache.request_key) and replays the re-ask chain of every cached answer (an answer the
validation rejects leads to the re-ask request, which is looked up in turn), so `requests` is the number of first
requests `mdpr library` will send now, duplicates (identical requests, answered once) counted once. Re-asks of
answers not received yet cannot be known before the answers: at most requests x library.max_reasks more
(`reasks_at_most`). Retries after server errors are not counted. Prompt tokens are what OpenAI's rate limiter
counts before answering (message characters / 4, pacing.request_tokens), not the model's own tokenizer; completion
tokens are bounded by llm.max_tokens per request, and estimated by the mean of the cached answers when there are
some. `cache` is any mapping-like object with `get(key)` (the open answer cache, or {} when there is none).
"""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.library.answer_cache import request_key
from pipeline.library.descriptions import check_answer, reask_messages
from pipeline.library.pacing import request_tokens
from pipeline.library.records import RecordMaker


@dataclass
class RequestPlan:
    """The library stage's LLM work, before it runs."""

    descriptions: int               # (class, slot) pairs: C x V
    requests: int                   # first requests not answered by the cache: what `mdpr library` sends now
    cache_hits: int                 # requests answered by the cache (re-ask chains included)
    duplicates: int                 # identical requests, sent once
    prompt_tokens: int              # of the requests to send: message characters / 4
    max_tokens: int                 # llm.max_tokens: completion tokens at most, per request
    reasks_at_most: int             # re-asks the answers may still need: requests x library.max_reasks
    cached_tokens_out: list[int]    # completion tokens of the cached answers seen (for the estimate)

    @property
    def completion_tokens_max(self) -> int:
        return self.requests * self.max_tokens

    @property
    def completion_tokens_estimate(self) -> int | None:
        """requests x the mean completion tokens of the cached answers (None when none is cached)."""
        if not self.cached_tokens_out:
            return None
        return round(self.requests * sum(self.cached_tokens_out) / len(self.cached_tokens_out))


def plan_requests(class_names: list[str], maker: RecordMaker, cache) -> RequestPlan:
    """Walk every (class, slot) request as the client would see it; nothing is sent or written."""
    seen: set[str] = set()
    requests = hits = duplicates = prompt_tokens = 0
    tokens_out: list[int] = []
    for class_index, name in enumerate(class_names):
        for slot, _, _ in maker.slots:
            messages = maker.messages(class_index, name, slot)
            for ask in range(maker.lib.max_reasks + 1):
                key = request_key(maker.llm, messages)
                if key in seen:  # answered by the identical request (in flight, or its chain replayed)
                    duplicates += 1
                    break
                seen.add(key)
                cached = cache.get(key)
                if cached is None:
                    requests += 1
                    prompt_tokens += request_tokens(messages, 0)
                    break
                hits += 1
                tokens_out.append(int(cached.get("tokens_out") or 0))
                _, reason = check_answer(name, cached.get("text"), cached.get("finish_reason"))
                if reason is None or ask == maker.lib.max_reasks:
                    break
                messages = reask_messages(messages, cached.get("text"), reason, name)
    return RequestPlan(len(class_names) * len(maker.slots), requests, hits, duplicates, prompt_tokens,
                       maker.llm.max_tokens, requests * maker.lib.max_reasks, tokens_out)


def wall_time_s(plan: RequestPlan, requests_per_minute: int | None, tokens_per_minute: int | None,
                concurrency: int, latency_s: float) -> float:
    """Seconds to send plan.requests: the longest of the pacing under each limit (the client books prompt tokens +
    max_tokens per request, pacing.py) and requests x latency / concurrency."""
    booked = plan.prompt_tokens + plan.requests * plan.max_tokens
    bounds = [plan.requests * latency_s / concurrency]
    if requests_per_minute:
        bounds.append(plan.requests * 60.0 / requests_per_minute)
    if tokens_per_minute:
        bounds.append(booked * 60.0 / tokens_per_minute)
    return max(bounds)


def price(plan: RequestPlan, input_per_million: float | None, output_per_million: float | None) -> dict | None:
    """{'estimate', 'at_most'} in the params' currency (completion tokens at their estimate, and at max_tokens), or
    None when a price param is null."""
    if input_per_million is None or output_per_million is None:
        return None

    def cost(completion_tokens: int) -> float:
        return (plan.prompt_tokens * input_per_million + completion_tokens * output_per_million) / 1e6

    estimate = plan.completion_tokens_estimate
    return {"estimate": None if estimate is None else round(cost(estimate), 4),
            "at_most": round(cost(plan.completion_tokens_max), 4)}
