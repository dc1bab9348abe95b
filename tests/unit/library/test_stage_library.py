"""Stage `library` end to end: inputs, output file, summary line, rerun from the cache (the resume after SIGKILL is
in tests/e2e/test_killed_runs.py).

    .venv/bin/python -m pytest tests/unit/library/test_stage_library.py
"""
import json

import pytest

from pipeline.core import paths
from pipeline.core.errors import UserError
from stages import library as stage
from tests.helpers.fake_llm import FakeLLM
from tests.helpers.library_inputs import (
    NAMES,
    SECRET,
    library_project,
    openai_section,
    write_classes_json,
    write_inputs,
)
from tests.helpers.worlds import write_params


@pytest.fixture
def project(tmp_path, monkeypatch):
    return library_project(tmp_path, monkeypatch)


def test_stage_writes_the_library_and_prints_one_line(project, capsys):
    write_params(project, {"llm": {"backend": "offline"}, "train": {"epochs": -1}})  # train is not read here
    summary = stage.run()
    lines = (project / paths.LIBRARY).read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 15 and summary["descriptions"] == 15
    assert all(line == json.dumps(r, sort_keys=True, ensure_ascii=False) for line, r in zip(lines, records))
    assert [r["contrast_class"] for r in records if r["dimension"] == "differential"] == ["lynx", "tiger", None]
    assert str(project) not in "".join(lines)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("library: 15 descriptions for 3 classes")


def test_stage_names_the_stage_that_makes_a_missing_input(project):
    write_params(project, {"llm": {"backend": "offline"}})
    (project / paths.CONFUSION).unlink()
    with pytest.raises(UserError, match="mdpr confusion"):
        stage.run()
    (project / paths.CLASSES).unlink()
    with pytest.raises(UserError, match="mdpr prepare"):
        stage.run()
    assert not (project / paths.LIBRARY).exists()


def test_stage_rejects_a_confusion_file_from_another_class_list(project):
    write_params(project, {"llm": {"backend": "offline"}})
    write_inputs(project, names=["tiger", "cat", "owl"], confused={})
    write_classes_json(project, NAMES)
    with pytest.raises(UserError, match="does not match.*mdpr confusion"):
        stage.run()


def test_stage_rerun_makes_no_request_and_never_shows_the_key(project, capfd):
    with FakeLLM() as server:
        write_params(project, {"llm": openai_section(server, project)})
        stage.run()
        first = (project / paths.LIBRARY).read_bytes()
        assert len(server.requests) == 15
        assert server.requests[0].headers["authorization"] == f"Bearer {SECRET}"
        stage.run()
        assert len(server.requests) == 15
    assert (project / paths.LIBRARY).read_bytes() == first
    printed = capfd.readouterr()
    assert "requests 15" in printed.out and "requests 0, cache hits 15" in printed.out
    cache_bytes = b"".join(p.read_bytes() for p in (project / "cache").rglob("*") if p.is_file())
    for blob in (first, cache_bytes, printed.out.encode(), printed.err.encode()):
        assert SECRET.encode() not in blob


