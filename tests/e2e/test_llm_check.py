"""`mdpr llm-check` against the loopback LLM server: what it prints, that it caches nothing, and one line per failure.

    .venv/bin/python -m pytest tests/e2e/test_llm_check.py -q
"""
import json
import re
import socket

import diskcache
import pytest

from pipeline.config.library_params import LibraryParams
from pipeline.core.errors import UserError
from pipeline.library.llm_check import check_server
from tests.helpers.worlds import LLM_KEY_ENV, LLM_SECRET, openai_params, run_mdpr, write_params

DIMENSIONS = LibraryParams().dimensions


def llm_section(server, cache_dir) -> dict:
    return {"backend": "openai", "base_url": server.url, "api_key_env": LLM_KEY_ENV, "cache_dir": str(cache_dir),
            "timeout_s": 5.0}


def test_one_request_per_dimension_with_latency_tokens_and_answers(tmp_path, server):
    write_params(tmp_path, {"llm": llm_section(server, tmp_path / "cache")})
    result = run_mdpr(["llm-check", "--class", "snow leopard"], tmp_path, env={LLM_KEY_ENV: LLM_SECRET})
    assert result.returncode == 0, result.stderr
    requests = server.chat_requests
    assert len(requests) == len(DIMENSIONS) and {r.class_name for r in requests} == {"snow leopard"}
    lines = result.stdout.splitlines()
    assert lines[0] == (f"llm-check: {server.url}, model 'gpt-4o-mini', class 'snow leopard', "
                        f"{len(DIMENSIONS)} dimension(s)")
    rows = [re.match(r"  (\w+) +([\d.]+) s +(\d+) in +(\d+) out  ok$", line) for line in lines[1:-1:2]]
    assert [row.group(1) for row in rows] == list(DIMENSIONS)
    for row, request in zip(rows, requests):           # the tokens the server reported for that very request
        usage_in = len(json.dumps(request.body["messages"]).split())
        assert int(row.group(3)) == usage_in and int(row.group(4)) > 0 and float(row.group(2)) >= 0
    assert all("snow leopard" in line for line in lines[2:-1:2])   # each answer, as the server wrote it
    assert lines[-1].startswith(f"llm-check: {len(DIMENSIONS)} of {len(DIMENSIONS)} answers usable")
    with diskcache.Cache(str(tmp_path / "cache")) as cache:
        assert len(cache) == 0                                      # a check never fills the answer cache


def test_an_unreachable_server_is_one_line(tmp_path):
    with socket.socket() as probe:                                   # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    write_params(tmp_path, {"llm": {"backend": "openai", "base_url": f"http://127.0.0.1:{port}/v1",
                                    "api_key_env": LLM_KEY_ENV, "timeout_s": 5.0}})
    result = run_mdpr(["llm-check"], tmp_path, env={LLM_KEY_ENV: LLM_SECRET})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: llm-check: cannot reach http://127.0.0.1:{port}/v1 (connection error")
    assert "ollama serve" in lines[0]


@pytest.mark.parametrize("fault, says", [("401", "the server rejected the API key"),
                                         ("404", "the model or endpoint does not exist"),
                                         ("429", "is rate limiting"),
                                         ("slow", "gave no answer within llm.timeout_s = 0.5 s")])
def test_key_model_rate_and_timeout_problems_are_named(tmp_path, server, llm_key, fault, says):
    server.script(fault)
    llm = openai_params(server, tmp_path / "cache", timeout_s=0.5)
    with pytest.raises(UserError, match=re.escape(says)):
        check_server(llm, LibraryParams(), "snow leopard")
    assert len(server.chat_requests) == 1                            # no retry: the first failure is the answer
