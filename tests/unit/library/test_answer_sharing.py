"""Sharing LLM answers: the local cache -> content-addressed shards -> a teammate's cache, with nothing secret inside.

    .venv/bin/python -m pytest tests/unit/library/test_answer_sharing.py

Answers are made for real: the async client asks the loopback fake server and fills a real diskcache.
"""
import asyncio
import hashlib
import json
from dataclasses import fields

import pytest

from pipeline.core.errors import UserError
from pipeline.library.answer_cache import Answer, open_cache, request_key
from pipeline.library.answer_sharing import ANSWER_TYPES, export_answers, import_answers, read_shared
from pipeline.library.llm import LLMClient
from tests.helpers.worlds import LLM_SECRET, openai_params, write_params

pytestmark = pytest.mark.usefixtures("llm_key")


def conversation(name: str) -> list[dict]:
    return [{"role": "system", "content": "Describe things."}, {"role": "user", "content": f'Describe the "{name}".'}]


def ask(llm, names: list[str]):
    """Ask for every name through the real client (cache llm.cache_dir); the client's stats."""
    async def main():
        async with LLMClient(llm) as client:
            await asyncio.gather(*(client.complete(conversation(name)) for name in names))
        return client.stats
    return asyncio.run(main())


def cached(cache_dir) -> dict:
    with open_cache(str(cache_dir)) as cache:
        return {key: cache[key] for key in cache}


def test_a_teammate_importing_the_shards_sends_no_request(server, tmp_path):
    mine, theirs, folder = tmp_path / "mine", tmp_path / "theirs", tmp_path / "llm-answers"
    ask(openai_params(server, mine), ["tiger", "lynx", "owl"])
    done = export_answers(mine, folder)
    assert (done.new, done.shared) == (3, 0) and done.shard.parent == folder
    imported = import_answers(theirs, folder)
    assert (imported.shards, imported.answers, imported.added, imported.present) == (1, 3, 3, 0)
    assert cached(theirs) == cached(mine)
    server.reset()
    stats = ask(openai_params(server, theirs), ["tiger", "lynx", "owl", "zebra"])
    assert (stats.requests, stats.cache_hits) == (1, 3) and len(server.chat_requests) == 1


def test_export_adds_only_new_answers_in_a_new_shard_and_never_rewrites_one(server, tmp_path):
    cache_dir, folder = tmp_path / "cache", tmp_path / "llm-answers"
    ask(openai_params(server, cache_dir), ["tiger", "lynx"])
    first = export_answers(cache_dir, folder).shard
    first_bytes = first.read_bytes()
    again = export_answers(cache_dir, folder)
    assert (again.shard, again.new, again.shared) == (None, 0, 2)
    ask(openai_params(server, cache_dir), ["owl"])
    second = export_answers(cache_dir, folder)
    assert (second.new, second.shared) == (1, 2) and second.shard != first
    assert first.read_bytes() == first_bytes and sorted(folder.glob("*.jsonl")) == sorted([first, second.shard])
    assert (folder / ".gitignore").read_text() == "/*.jsonl\n"  # shards go to DVC; DVC then leaves .gitignore alone
    assert second.shard.name.startswith(hashlib.sha256(second.shard.read_bytes()).hexdigest()[:20])
    assert len(read_shared(folder)[0]) == 3


def test_two_teammates_exports_merge_as_a_union(server, tmp_path):
    folder = tmp_path / "llm-answers"
    for person, names in (("a", ["tiger", "lynx"]), ("b", ["lynx", "owl"])):
        ask(openai_params(server, tmp_path / person), names)
        export_answers(tmp_path / person, folder)  # each exports into their own copy; files are only added
    shared, shards = read_shared(folder)
    assert shards == 2 and len(shared) == 3
    assert import_answers(tmp_path / "c", folder).added == 3


def test_import_keeps_an_answer_the_local_cache_already_holds(server, tmp_path):
    mine, theirs, folder = tmp_path / "mine", tmp_path / "theirs", tmp_path / "llm-answers"
    ask(openai_params(server, mine), ["tiger", "lynx"])
    export_answers(mine, folder)
    key = request_key(openai_params(server, theirs), conversation("tiger"))
    local = {"text": "A tiger, my own answer.", "model": "gpt-4o-mini", "finish_reason": "stop", "tokens_in": 1,
             "tokens_out": 5}
    with open_cache(str(theirs)) as cache:
        cache.set(key, local)
    done = import_answers(theirs, folder)
    assert (done.added, done.present, done.differing) == (1, 1, 1)
    assert cached(theirs)[key] == local


def test_a_shard_holds_only_request_hashes_and_answers(server, tmp_path):
    cache_dir, folder = tmp_path / "cache", tmp_path / "llm-answers"
    llm = openai_params(server, cache_dir)
    ask(llm, ["tiger"])
    shard = export_answers(cache_dir, folder).shard
    text = shard.read_text()
    assert LLM_SECRET not in text and server.url not in text and str(server.url.split(":")[-1]) not in text
    (entry,) = [json.loads(line) for line in text.splitlines()]
    assert entry["key"] == request_key(llm, conversation("tiger"))
    assert set(entry) == {"key", "answer"} and set(entry["answer"]) == {f.name for f in fields(Answer)}
    assert "tiger" in entry["answer"]["text"]


def test_shared_answer_fields_follow_the_cached_answer():
    assert set(ANSWER_TYPES) == {f.name for f in fields(Answer)}


VALID = {"text": "A tiger.", "model": "m", "finish_reason": "stop", "tokens_in": 1, "tokens_out": 2}


@pytest.mark.parametrize("line", [
    "not json",
    json.dumps({"key": "ab" * 32}),
    json.dumps({"key": "AB" * 32, "answer": VALID}),
    json.dumps({"key": "ab" * 32, "answer": {k: v for k, v in VALID.items() if k != "tokens_out"}}),
    json.dumps({"key": "ab" * 32, "answer": {**VALID, "tokens_in": "1"}}),
    json.dumps({"key": "ab" * 32, "answer": {**VALID, "api_key": "sk-1"}}),
    json.dumps({"key": "ab" * 32, "answer": VALID, "api_key": "sk-1"}),
], ids=["not-json", "no-answer", "bad-key", "missing-field", "wrong-type", "extra-field", "extra-entry"])
def test_a_damaged_shard_is_refused_naming_the_line_and_nothing_is_imported(server, tmp_path, line):
    cache_dir, folder = tmp_path / "cache", tmp_path / "llm-answers"
    ask(openai_params(server, tmp_path / "a"), ["tiger"])
    good = export_answers(tmp_path / "a", folder).shard
    bad = folder / "zz-damaged.jsonl"
    bad.write_text(good.read_text() + line + "\n")
    with pytest.raises(UserError, match=rf"{bad}:2: "):
        import_answers(cache_dir, folder)
    assert not cache_dir.exists() or cached(cache_dir) == {}


def test_import_without_the_folder_says_how_to_get_it(tmp_path):
    with pytest.raises(UserError, match="not found; fetch the team's answers with `git pull && dvc pull`"):
        import_answers(tmp_path / "cache", tmp_path / "llm-answers")


def test_the_commands_read_llm_cache_dir_from_params(server, tmp_path, monkeypatch):
    """The click commands in process (the real console script runs them in tests/e2e/test_team_sharing.py)."""
    from click.testing import CliRunner

    from stages.cli import main

    monkeypatch.chdir(tmp_path)
    ask(openai_params(server, tmp_path / ".cache/llm"), ["tiger", "lynx"])
    write_params(tmp_path, {"llm": {"cache_dir": ".cache/llm"}})
    exported = CliRunner().invoke(main, ["llm-cache", "export"])
    assert exported.exit_code == 0 and "2 new answers -> llm-answers/" in exported.output, exported.output
    write_params(tmp_path, {"llm": {"cache_dir": "elsewhere"}})
    imported = CliRunner().invoke(main, ["llm-cache", "import"])
    assert imported.exit_code == 0 and "2 added to elsewhere, 0 already there." in imported.output
    assert cached(tmp_path / "elsewhere") == cached(tmp_path / ".cache/llm")
    missing = CliRunner().invoke(main, ["llm-cache", "import", "--dir", "nowhere"])
    assert missing.exit_code == 2 and missing.output.startswith("error: llm-cache import: folder nowhere not found")
