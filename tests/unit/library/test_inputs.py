"""LLM inputs before a run: the key variable (set or not, never its value) and one request to the server.

    .venv/bin/python -m pytest tests/unit/library/test_inputs.py -q
"""
import socket

from pipeline.config.library_params import LibraryParams, LLMParams
from pipeline.config.schema import from_dict
from pipeline.core.findings import MISSING, NOTE, OK
from pipeline.library.inputs import llm_findings
from tests.helpers.worlds import LLM_KEY_ENV, LLM_SECRET, openai_params


def text_of(findings) -> str:
    return " ".join(f"{f.name} {f.detail} {f.fix}" for f in findings)


def test_an_unset_key_is_missing_and_the_server_is_not_asked(tmp_path, server, monkeypatch):
    monkeypatch.delenv(LLM_KEY_ENV, raising=False)
    key, ask = llm_findings(openai_params(server, tmp_path), LibraryParams())
    assert key.status == MISSING and f"{LLM_KEY_ENV} (llm.api_key_env) is not set" in key.detail
    assert f"export {LLM_KEY_ENV}=" in key.fix
    assert ask.status == NOTE and server.chat_requests == []


def test_a_set_key_is_ok_without_its_value_and_the_server_gets_one_request(tmp_path, server, llm_key):
    found = llm_findings(openai_params(server, tmp_path), LibraryParams())
    assert [f.status for f in found] == [OK, OK]
    assert f"{LLM_KEY_ENV} is set" in found[0].detail and LLM_SECRET not in text_of(found)
    assert len(server.chat_requests) == 1 and server.chat_requests[0].class_name == "golden retriever"
    assert not (tmp_path / "cache").exists()  # nothing cached


def test_a_server_that_is_not_there_is_missing_with_llm_checks_line(tmp_path, llm_key):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    llm = from_dict(LLMParams, {"backend": "openai", "base_url": f"http://127.0.0.1:{port}/v1",
                                "api_key_env": LLM_KEY_ENV, "timeout_s": 2.0, "cache_dir": str(tmp_path / "c")})
    key, ask = llm_findings(llm, LibraryParams())
    assert key.status == OK and ask.status == MISSING and "cannot reach" in ask.fix and LLM_SECRET not in ask.fix


def test_offline_and_file_backends(tmp_path):
    assert [f.status for f in llm_findings(LLMParams(), LibraryParams())] == [OK]
    [file] = llm_findings(LLMParams(backend="file"), LibraryParams(file=str(tmp_path / "d.json")))
    assert file.status == MISSING and "not found" in file.detail
