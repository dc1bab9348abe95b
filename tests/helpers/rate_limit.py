"""The fake LLM server's rate limits: token buckets, as APIs enforce per-minute limits over short windows.

    bucket = Bucket(rate=600, burst_s=1.0, cost=lambda body: 1)      # 600 requests per minute, 10 at once at most
    bucket.wait(time.monotonic(), body) -> 0.0 or the seconds until the request would fit; bucket.take(...) charges it

The client's pacing (pipeline/library/pacing.py) is measured against these buckets, not derived from them: the
token cost is written out here on its own.
"""
from __future__ import annotations

import time
from typing import Callable


def request_cost(body: dict) -> float:
    """What a rate limiter counts for a request: message characters / 4 + max_tokens (OpenAI's estimate)."""
    characters = sum(len(m.get("content") or "") for m in body.get("messages", []))
    return -(-characters // 4) + int(body.get("max_tokens") or 0)


class Bucket:
    """A token bucket: `rate` per minute, holding `burst_s` seconds of it (at least one request's cost)."""

    def __init__(self, rate: float, burst_s: float, cost: Callable[[dict], float]):
        self.per_second, self.cost = rate / 60.0, cost
        self.capacity = self.per_second * burst_s
        self.level, self.at = self.capacity, time.monotonic()

    def _refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.at) * self.per_second)
        self.at = now

    def wait(self, now: float, body: dict) -> float:
        """0 when the request fits now, else the seconds until it would."""
        self._refill(now)
        needed = min(self.cost(body), self.capacity)  # a request larger than the bucket waits for a full bucket
        return 0.0 if self.level >= needed else (needed - self.level) / self.per_second

    def take(self, now: float, body: dict) -> None:
        self._refill(now)
        self.level -= min(self.cost(body), self.capacity)
