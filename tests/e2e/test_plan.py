"""`mdpr plan` against what the library stage then sends: the same requests and prompt tokens, zero after a run,
nothing written, and an answer chain replayed through the cache (a rejected answer whose re-ask failed is one
request left).

    .venv/bin/python -m pytest tests/e2e/test_plan.py -q

The tiny embedded world (6 classes, mdpr-tiny) and the loopback fake LLM server (tests/helpers/fake_llm.py); `mdpr
plan` runs in this process (it imports torch and open_clip to time the encoder: once per test process instead of
~5 s at every call), `mdpr library` as the console script.
"""
from __future__ import annotations

import json
import math

from pipeline.library.pacing import request_tokens
from tests.helpers.worlds import LLM_KEY_ENV, mdpr_in_process, run_mdpr, write_params

CLASSES, VIEWS = 6, 5


def configure(project, server, **library):
    llm = {"backend": "openai", "base_url": server.url, "api_key_env": LLM_KEY_ENV, "max_retries": 0,
           "timeout_s": 5.0, "cache_dir": ".cache/llm"}
    write_params(project, {"llm": llm, "library": {"max_fallback_fraction": 1.0, **library},
                           "plan": {"probe_images": 1, "price_input_per_million": 0.15,
                                    "price_output_per_million": 0.6}})


def plan(project) -> dict:
    result = mdpr_in_process(["plan", "--json"], cwd=project)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["stages"]["library"]


def tree(project) -> dict:
    """Every file under the project with its size and mtime."""
    return {str(p.relative_to(project)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(project.rglob("*")) if p.is_file()}


def sent_prompt_tokens(server) -> int:
    return sum(request_tokens(r.body["messages"], 0) for r in server.chat_requests)


def test_plan_counts_what_the_library_then_sends_and_zero_after(project, server, llm_key):
    configure(project, server)
    before = tree(project)
    first = plan(project)
    assert tree(project) == before  # no artifact, no answer cache created
    assert first["exact"] and first["requests"] == CLASSES * VIEWS and first["cache_hits"] == 0
    result = run_mdpr(["library"], cwd=project)
    assert result.returncode == 0, result.stderr
    assert len(server.chat_requests) == first["requests"]
    assert sent_prompt_tokens(server) == first["prompt_tokens"]
    assert first["completion_tokens_max"] == first["requests"] * 80
    expected_price = (first["prompt_tokens"] * 0.15 + first["completion_tokens_max"] * 0.6) / 1e6
    assert math.isclose(first["price"]["at_most"], round(expected_price, 4))
    after = plan(project)
    assert after["requests"] == 0 and after["cache_hits"] == CLASSES * VIEWS and after["cache_entries"] == 30
    assert after["completion_tokens_estimate"] == 0  # nothing left to ask


def test_a_rejected_answer_whose_reask_failed_is_one_request_left(project, server, llm_key):
    configure(project, server, max_reasks=1)
    target = json.loads((project / "artifacts/data/classes.json").read_text())["names"][0]
    # one first request gets an empty answer (rejected, cached), and its re-ask a server error (not cached)
    server.policy = lambda request: ("500" if len(request.body["messages"]) > 2 else
                                     "empty" if request.class_name == target and "overall appearance" in
                                     request.user_text else None)
    result = run_mdpr(["library"], cwd=project)
    assert result.returncode == 0 and "FALLBACKS 1" in result.stdout, result.stdout + result.stderr
    server.policy = None
    server.reset()
    left = plan(project)
    assert left["requests"] == 1 and left["cache_hits"] == CLASSES * VIEWS  # 29 answers + the rejected one
    result = run_mdpr(["library"], cwd=project)
    assert result.returncode == 0, result.stderr
    assert len(server.chat_requests) == 1 and sent_prompt_tokens(server) == left["prompt_tokens"]
    assert server.chat_requests[0].body["messages"][-2]["role"] == "assistant"  # the re-ask, found through the cache
