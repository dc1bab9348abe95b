"""The async LLM client against a real loopback server (tests/fake_llm.py) through the real openai client.

    .venv/bin/python -m pytest tests/unit/library/test_llm.py
"""
import asyncio
import json
import time
from email.utils import formatdate
from pathlib import Path

import diskcache
import openai  # noqa: F401  (imported here so the timing test does not time the import)
import pytest

from pipeline.config.library_params import DIMENSIONS, LibraryParams, LLMParams
from pipeline.config.schema import from_dict
from pipeline.core.errors import UserError
from pipeline.library import llm as llm_module
from pipeline.library.answer_cache import request_key
from pipeline.library.llm import LLMClient, RequestFailed
from tests.helpers.fake_llm import FakeLLM, Fault
from tests.helpers.worlds import LLM_KEY_ENV, LLM_SECRET, openai_params

KEY_ENV, SECRET = LLM_KEY_ENV, LLM_SECRET
pytestmark = pytest.mark.usefixtures("llm_key")


def params(server, tmp_path, **overrides) -> LLMParams:
    return openai_params(server, overrides.pop("cache_dir", tmp_path / "cache"), **overrides)


def conversation(name: str) -> list[dict]:
    return [{"role": "system", "content": "Describe things."}, {"role": "user", "content": f'Describe the "{name}".'}]


def ask(llm: LLMParams, conversations: list[list[dict]]):
    """Answers (or exceptions) for each conversation, and the client's stats."""
    async def main():
        async with LLMClient(llm) as client:
            answers = await asyncio.gather(*(client.complete(c) for c in conversations), return_exceptions=True)
        return answers, client.stats
    return asyncio.run(main())


def test_requests_run_in_parallel_up_to_the_concurrency(server, tmp_path):
    server.latency = 0.2
    start = time.perf_counter()
    answers, stats = ask(params(server, tmp_path, concurrency=4), [conversation(f"class {i}") for i in range(12)])
    elapsed = time.perf_counter() - start
    assert server.max_in_flight == 4
    assert elapsed < 12 * 0.2 * 0.75  # sequential would take 2.4 s, concurrency 4 about 0.6 s
    assert stats.requests == 12 and [a.text.split()[1:3] for a in answers][:2] == [["class", "0"], ["class", "1"]]


def test_answers_are_cached_per_request_not_per_server(server, tmp_path):
    conversations = [conversation(name) for name in ("cat", "dog", "owl")]
    first, stats = ask(params(server, tmp_path), conversations)
    assert stats.requests == 3 and stats.cache_hits == 0
    with FakeLLM() as other_server:  # another URL, same model and requests: served from the cache
        again, stats = ask(params(other_server, tmp_path), conversations)
        assert other_server.requests == [] and stats.requests == 0 and stats.cache_hits == 3
    assert again == first


def test_identical_requests_in_flight_are_sent_once(server, tmp_path):
    server.latency = 0.1
    answers, stats = ask(params(server, tmp_path), [conversation("missile")] * 3)
    assert len(server.requests) == 1 and stats.cache_hits == 2
    assert answers[0] == answers[1] == answers[2]


def test_cache_key_covers_the_request_but_not_the_server_or_key(server, tmp_path):
    base = params(server, tmp_path)
    key = request_key(base, conversation("cat"))
    same = [params(server, tmp_path, base_url="http://elsewhere:1/v1", api_key_env="OTHER_KEY", concurrency=1,
                   timeout_s=9.0, max_retries=0, cache_dir="x")]
    assert all(request_key(p, conversation("cat")) == key for p in same)
    changed = [params(server, tmp_path, **{name: value}) for name, value in
               (("model", "other"), ("temperature", 0.5), ("seed", 1), ("max_tokens", 60))]
    others = {request_key(p, conversation("cat")) for p in changed}
    assert len({key, request_key(base, conversation("dog")), *others}) == 6


@pytest.mark.parametrize("status", ["429", "503"])
def test_retry_after_is_honoured(server, tmp_path, monkeypatch, status):
    monkeypatch.setattr(llm_module, "BACKOFF_BASE_S", 5.0)  # a plain backoff would take seconds
    server.script(Fault(status, retry_after="0.3"))
    start = time.perf_counter()
    (answer,), stats = ask(params(server, tmp_path), [conversation("cat")])
    elapsed = time.perf_counter() - start
    assert 0.3 <= elapsed < 2.0
    assert "cat" in answer.text and stats.retries == 1 and stats.requests == 2 and len(server.requests) == 2


def test_retry_after_header_forms():
    assert llm_module._retry_after({"retry-after": "2"}) == 2.0
    assert llm_module._retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert llm_module._retry_after({"retry-after": "100000"}) == llm_module.RETRY_AFTER_CAP_S
    assert 25 <= llm_module._retry_after({"retry-after": formatdate(time.time() + 30, usegmt=True)}) <= 30
    assert llm_module._retry_after({"retry-after": "soon"}) is None and llm_module._retry_after({}) is None


@pytest.mark.parametrize("fault", ["500", Fault("503", retry_after=None), Fault("slow", delay=1.5), "malformed",
                                   "close", "429"], ids=str)
def test_transient_faults_are_retried_and_counted(server, tmp_path, fault):
    server.script(fault, fault)
    (answer,), stats = ask(params(server, tmp_path, timeout_s=0.3), [conversation("cat")])
    assert not isinstance(answer, Exception), answer
    assert "cat" in answer.text
    assert stats.retries == 2 and stats.requests == 3 and len(server.requests) == 3 and stats.failures == 0


def test_persistent_failure_raises_after_max_retries(server, tmp_path):
    server.policy = lambda request: "500" if request.class_name == "zebra" else None
    (bad, good), stats = ask(params(server, tmp_path, max_retries=2), [conversation("zebra"), conversation("cat")])
    assert isinstance(bad, RequestFailed) and "HTTP 500" in str(bad)
    assert "cat" in good.text
    assert stats.failures == 1 and stats.retries == 2 and stats.requests == 4
    assert sum(r.class_name == "zebra" for r in server.requests) == 3


def test_rejected_key_stops_the_run_without_showing_the_key(server, tmp_path):
    server.script(Fault("401", body=json.dumps({"error": {"message": f"Incorrect API key provided: {SECRET}"}})))
    (error,), stats = ask(params(server, tmp_path), [conversation("cat")])
    assert isinstance(error, UserError) and "rejected the API key" in str(error)
    assert SECRET not in str(error) and KEY_ENV in str(error)
    assert len(server.requests) == 1 and stats.retries == 0


def test_other_4xx_fails_the_request_without_retrying(server, tmp_path):
    server.script("400")
    (answer,), stats = ask(params(server, tmp_path), [conversation("cat")])
    assert isinstance(answer, RequestFailed) and "HTTP 400" in str(answer)
    assert stats.requests == 1 and stats.retries == 0 and stats.failures == 1


def test_answers_from_another_model_name_are_accepted_and_warned_once(server, tmp_path, capsys):
    server.script("other-model", "other-model")
    answers, stats = ask(params(server, tmp_path), [conversation("cat"), conversation("dog")])
    assert all("served-alias" == a.model for a in answers)
    assert stats.model_mismatches == 2
    assert capsys.readouterr().err.count("served-alias") == 1


def test_dated_snapshot_names_are_not_mismatches(tmp_path):
    with FakeLLM(model="gpt-4o-mini-2024-07-18") as server:
        _, stats = ask(params(server, tmp_path, model="gpt-4o-mini"), [conversation("cat")])
    assert stats.model_mismatches == 0


@pytest.mark.parametrize("value", [None, ""])
def test_missing_api_key_is_a_user_error_before_any_request(server, tmp_path, monkeypatch, value):
    if value is None:
        monkeypatch.delenv(KEY_ENV)
    else:
        monkeypatch.setenv(KEY_ENV, value)
    with pytest.raises(UserError, match=KEY_ENV) as err:
        ask(params(server, tmp_path), [conversation("cat")])
    assert "any value" in str(err.value)
    assert server.requests == [] and not (tmp_path / "cache").exists()


def test_the_key_is_sent_but_never_stored_or_echoed(server, tmp_path):
    def echo_key(request):  # a server (or proxy) that echoes the Authorization header in its error body
        return Fault("500", body=json.dumps({"error": {"message": f"denied {request.headers['authorization']}"}}))
    server.policy = lambda request: echo_key(request) if request.class_name == "zebra" else None
    (bad, good), _ = ask(params(server, tmp_path, max_retries=0), [conversation("zebra"), conversation("cat")])
    assert server.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert isinstance(bad, RequestFailed) and "denied Bearer ***" in str(bad) and SECRET not in str(bad)
    cache_bytes = b"".join(p.read_bytes() for p in Path(tmp_path / "cache").rglob("*") if p.is_file())
    assert SECRET.encode() not in cache_bytes and b"SECRET" not in cache_bytes
    with diskcache.Cache(str(tmp_path / "cache"), disk=diskcache.JSONDisk) as cache:
        entries = json.dumps([[key, cache[key]] for key in cache])
    assert "cat" in entries and SECRET not in entries and server.url not in entries


@pytest.mark.parametrize("per_dimension", [1, 3])
def test_cache_key_differs_for_every_description_index_and_dimension(server, tmp_path, per_dimension):
    """Every slot of a class (dimension, description k of n) is its own request: were k or the dimension left out of
    the messages, the second description would be the cached first one."""
    from pipeline.library.records import RecordMaker

    lib = from_dict(LibraryParams, {"per_dimension": per_dimension})
    llm = params(server, tmp_path)
    maker = RecordMaker(llm, lib, contrasts=[None, "wolf"])
    for class_index in (0, 1):
        keys = [request_key(llm, maker.messages(class_index, "husky", slot)) for slot in range(len(maker.slots))]
        assert len(set(keys)) == len(DIMENSIONS) * per_dimension
