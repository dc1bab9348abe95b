"""Pacing under requests- and tokens-per-minute limits: the schedule by hand, then measured against the loopback
server enforcing the limit (tests/helpers/rate_limit.py): zero 429s and throughput within 10% of the limit.

    .venv/bin/python -m pytest tests/unit/library/test_pacing.py       # about 10 s: it waits out real limits
"""
import asyncio

import pytest

from pipeline.library.llm import LLMClient, RequestFailed
from pipeline.library.pacing import Pacer, request_tokens
from tests.helpers.fake_llm import FakeLLM
from tests.helpers.rate_limit import request_cost
from tests.helpers.worlds import openai_params

pytestmark = pytest.mark.usefixtures("llm_key")


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_starts_are_spaced_by_the_tighter_limit_and_usage_above_the_estimate_delays_the_next():
    clock = Clock()
    pacer = Pacer(requests_per_minute=120, clock=clock)              # one start every 0.5 s
    assert [pacer.reserve(10) for _ in range(3)] == [100.0, 100.5, 101.0]
    clock.now = 105.0                                                 # idle time is not saved up for a burst
    assert [pacer.reserve(10) for _ in range(2)] == [105.0, 105.5]

    pacer = Pacer(requests_per_minute=120, tokens_per_minute=600, clock=clock)   # 100 tokens: 10 s > 0.5 s
    assert pacer.reserve(100) == 105.0 and pacer.reserve(5) == 115.0 and pacer.reserve(5) == 115.5
    pacer.charge(50)                                                  # the server counted 50 more: +5 s
    assert pacer.reserve(5) == 121.0
    assert not Pacer(clock=clock).active and Pacer(tokens_per_minute=1).active


def test_request_tokens_is_what_the_limiter_counts():
    messages = [{"role": "system", "content": "abcd" * 10}, {"role": "user", "content": "x" * 41}]
    assert request_tokens(messages, max_tokens=80) == 10 + 11 + 80
    assert request_tokens(messages, 80) == request_cost({"messages": messages, "max_tokens": 80})


def conversations(count: int) -> list[list[dict]]:
    return [[{"role": "system", "content": "Describe things in one sentence."},
             {"role": "user", "content": f'Describe the "class {i}" for a photo classifier.'}] for i in range(count)]


def send(llm, messages: list[list[dict]]):
    async def main():
        async with LLMClient(llm) as client:
            return await asyncio.gather(*(client.complete(m) for m in messages), return_exceptions=True)
    return asyncio.run(main())


def per_minute(server: FakeLLM, weights: list[float]) -> float:
    """Arrival rate per minute of what `weights` counts: all but the last request, over first to last arrival."""
    arrivals = [request.at for request in server.chat_requests]
    return sum(weights[:-1]) / (arrivals[-1] - arrivals[0]) * 60


@pytest.mark.parametrize("limit", ["requests_per_minute", "tokens_per_minute"])
def test_a_paced_client_meets_the_servers_limit_without_429s(tmp_path, limit):
    count = 31
    cost = request_cost({"messages": conversations(1)[0], "max_tokens": 80})
    rate = 600 if limit == "requests_per_minute" else 600 * cost      # 10 requests a second either way: ~3 s
    with FakeLLM(latency=0.05, **{limit: rate}) as server:
        llm = openai_params(server, tmp_path / "cache", concurrency=8, max_tokens=80, **{limit: rate})
        answers = send(llm, conversations(count))
        assert not [a for a in answers if isinstance(a, Exception)]
        assert server.rate_limited == 0 and len(server.chat_requests) == count
        weights = [1 if limit == "requests_per_minute" else request_cost(r.body) for r in server.chat_requests]
        measured = per_minute(server, weights)
    assert abs(measured - rate) <= 0.1 * rate, f"{measured:.0f} per minute against a limit of {rate}"


def test_without_pacing_the_same_client_meets_429s(tmp_path):
    """The control: the loopback limit does bite a client that only reacts to 429s."""
    with FakeLLM(latency=0.05, requests_per_minute=600) as server:
        answers = send(openai_params(server, tmp_path / "cache", concurrency=8, max_retries=0), conversations(20))
        assert server.rate_limited > 0
        assert sum(isinstance(a, RequestFailed) for a in answers) == server.rate_limited
