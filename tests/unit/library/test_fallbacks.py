"""An LLM run that mostly failed is a failed stage: fallbacks counted by cause, library.max_fallback_fraction, keys
that cannot be sent. Real HTTP against the loopback fake server (tests/helpers/fake_llm.py)."""
import socket

import pytest

from pipeline.core import paths
from pipeline.core.errors import UserError
from pipeline.library.build import format_summary
from stages import library as stage
from tests.helpers.fake_llm import FakeLLM
from tests.helpers.library_inputs import KEY_ENV, SECRET, library_project, openai_section
from tests.helpers.worlds import run_mdpr, write_params


@pytest.fixture
def project(tmp_path, monkeypatch):
    return library_project(tmp_path, monkeypatch)


def closed_port_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


class Down:
    url = closed_port_url()


def test_server_down_fails_the_stage_with_counts_by_cause_and_writes_nothing(project):
    write_params(project, {"llm": openai_section(Down, project, max_retries=0)})
    result = run_mdpr(["library"], cwd=project, env={KEY_ENV: SECRET})
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    line = errors[0]
    assert "15 of 15 descriptions (100%) fell back" in line and "(connection error 15)" in line
    assert f"is the server at {Down.url} running" in line and "library.max_fallback_fraction = 0.02" in line
    assert not (project / paths.LIBRARY).exists()
    assert SECRET not in result.stdout + result.stderr


def test_above_the_threshold_nothing_is_written_and_the_rerun_asks_only_the_missing_prompts(project):
    with FakeLLM() as server:
        server.policy = lambda request: "500" if request.class_name == "lynx" else None
        write_params(project, {"llm": openai_section(server, project, max_retries=1)})
        with pytest.raises(UserError, match=r"5 of 15 descriptions \(33%\).*\(HTTP 500 5\).*the 10 answers received "
                                            r"are cached"):
            stage.run()
        assert not (project / paths.LIBRARY).exists()
        first = server.requests_per_prompt()
        failed = {r.prompt for r in server.chat_requests if r.class_name == "lynx"}
        assert len(first) == 15 and len(failed) == 5 and all(first[p] == 2 for p in failed)  # 1 retry each
        server.policy = None
        server.reset()
        summary = stage.run()
        assert set(server.requests_per_prompt()) == failed  # only the prompts not answered before
        assert summary["cache_hits"] == 10 and summary["by_source"] == {"llm": 15}
    assert (project / paths.LIBRARY).is_file()


def test_a_successful_run_reports_fallbacks_by_cause(project):
    faults = {"tiger": "500", "lynx": "empty", "owl": "html"}
    with FakeLLM() as server:
        server.policy = lambda request: faults[request.class_name] if request.prompt[-1] in "01234567" else None
        write_params(project, {"llm": openai_section(server, project, max_retries=0),
                               "library": {"max_reasks": 0, "max_fallback_fraction": 1.0}})
        summary = stage.run()
    reasons = summary["fallback_reasons"]
    assert set(reasons) <= {"HTTP 500", "rejected: empty", "malformed response"} and len(reasons) == 3
    assert sum(reasons.values()) == summary["fallbacks"] == summary["by_source"]["fallback"]
    line = format_summary(summary)
    assert all(f"{cause} {n}" in line for cause, n in reasons.items())
    assert list(reasons.values()) == sorted(reasons.values(), reverse=True)


def test_the_threshold_is_inclusive_and_offline_is_exempt(project):
    with FakeLLM() as server:
        server.policy = lambda request: "500" if request.class_name == "lynx" else None
        write_params(project, {"llm": openai_section(server, project, max_retries=0),
                               "library": {"max_fallback_fraction": 1 / 3}})
        assert stage.run()["fallbacks"] == 5  # exactly at the threshold: accepted
    write_params(project, {"llm": {"backend": "offline"}, "library": {"max_fallback_fraction": 0.0}})
    assert stage.run()["by_source"] == {"offline": 15}


@pytest.mark.parametrize("key, what", [(SECRET + "\n", "whitespace or a line break"),
                                       (" " + SECRET, "whitespace or a line break"),
                                       (SECRET.replace("-", "\u2013"), "a non-ASCII character")])
def test_a_key_that_cannot_be_sent_is_refused_before_any_request(project, monkeypatch, key, what):
    monkeypatch.setenv(KEY_ENV, key)
    with FakeLLM() as server:
        write_params(project, {"llm": openai_section(server, project)})
        with pytest.raises(UserError, match=f"contains {what}") as err:
            stage.run()
        assert server.requests == []
    assert "SECRET" not in str(err.value) and not (project / paths.LIBRARY).exists()
