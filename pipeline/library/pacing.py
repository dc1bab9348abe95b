"""Pacing of LLM requests under requests- and tokens-per-minute limits: evenly spaced starts, no bursts.

    pacer = Pacer(requests_per_minute=500, tokens_per_minute=200_000)     # llm.requests_per_minute, ...
    cost = request_tokens(messages, max_tokens=80)                        # what the server will count
    await pacer.wait(cost)                                                # right before sending the request
    pacer.charge(used - cost)                                             # when the answer's usage says more

APIs count a per-minute limit over shorter windows too (OpenAI: 60,000 requests per minute may be enforced as
1,000 per second), so a client that sends a minute's worth at once gets a storm of 429s even under the limit. The
pacer gives each request a start time (in call order): no earlier than now, than 60 / requests_per_minute seconds
after the previous start, and than cost x 60 / tokens_per_minute seconds after it (a virtual-time schedule, GCRA,
with no burst). With enough requests waiting, throughput equals the tighter limit and never exceeds it; retries
are paced like first attempts. The cost of a request is what OpenAI estimates before answering: the characters of
the messages / 4 plus max_tokens; a server that reports more usage than that is charged the difference afterwards.
"""
from __future__ import annotations

import asyncio
import math
import time


def request_tokens(messages: list[dict], max_tokens: int) -> int:
    """Tokens a rate limiter counts for a request before it is answered: message characters / 4 + max_tokens."""
    characters = sum(len(message.get("content") or "") for message in messages)
    return math.ceil(characters / 4) + max_tokens


class Pacer:
    """Start times for requests under optional requests- and tokens-per-minute limits (None = unlimited)."""

    def __init__(self, requests_per_minute: int | None = None, tokens_per_minute: int | None = None,
                 clock=time.monotonic):
        self.requests_per_minute, self.tokens_per_minute = requests_per_minute, tokens_per_minute
        self._clock = clock
        self._next_start = -math.inf  # no request may start before this time (seconds of `clock`)
        self.waited_s = 0.0  # total time requests were held back

    @property
    def active(self) -> bool:
        return self.requests_per_minute is not None or self.tokens_per_minute is not None

    def reserve(self, cost: int) -> float:
        """The start time of the next request, which costs `cost` tokens; books the gap it leaves after it."""
        start = max(self._clock(), self._next_start)
        gap = 0.0
        if self.requests_per_minute:
            gap = 60.0 / self.requests_per_minute
        if self.tokens_per_minute:
            gap = max(gap, cost * 60.0 / self.tokens_per_minute)
        self._next_start = start + gap
        return start

    def charge(self, extra_tokens: int) -> None:
        """A request used `extra_tokens` more than it was booked for: later requests start that much later."""
        if self.tokens_per_minute and extra_tokens > 0:
            self._next_start += extra_tokens * 60.0 / self.tokens_per_minute

    async def wait(self, cost: int) -> None:
        """Sleep until this request's start time (at once without limits)."""
        if not self.active:
            return
        delay = self.reserve(cost) - self._clock()
        if delay > 0:
            self.waited_s += delay
            await asyncio.sleep(delay)
