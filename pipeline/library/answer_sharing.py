"""LLM answers paid for once per team: the local answer cache <-> a DVC-tracked folder of content-addressed shards.

    mdpr llm-cache export      # answers in llm.cache_dir that the folder lacks -> llm-answers/<sha256>.jsonl
    dvc add llm-answers/*.jsonl && dvc push && git add llm-answers && git commit -m "LLM answers" && git push
    # a teammate: git pull && dvc pull && mdpr llm-cache import     (llm-answers/ -> their llm.cache_dir)

    export_answers(".cache/llm", "llm-answers") -> Exported(shard=Path or None, new=12, shared=30)
    import_answers(".cache/llm", "llm-answers") -> Imported(shards=2, answers=42, added=12, present=30, differing=0)

Why a folder of its own: DVC deletes the library stage's outputs before the stage reruns, so answers kept only
there would be gone exactly when a teammate's changed prompt reruns it; the local cache (answer_cache.py) is per
machine. Each shard is tracked by its own `.dvc` file, so it travels through the team's DVC remote like every
output, and the folder's `.gitignore` (written once, `*.jsonl`) keeps DVC from editing a shared .gitignore: two
teammates' shares are different new files, which Git merges without a conflict.

A shard holds one line per answer, sorted by key: {"key": <sha256 of the canonical request>, "answer": {text,
model, finish_reason, tokens_in, tokens_out}}. The key is the cache key of answer_cache.request_key (it never
covers the API key nor the server URL), the answer is the cached Answer: nothing secret is in a shard. Shards are
only ever added, never rewritten (named by the sha256 of their content). Importing adds the answers the local cache
lacks and keeps the local answer where both have one.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, fields
from pathlib import Path

from pipeline.core.atomic import write_text
from pipeline.core.errors import UserError
from pipeline.core.paths import SHARED_ANSWERS
from pipeline.library.answer_cache import Answer, open_cache

GITIGNORE = "/*.jsonl\n"
"""The folder's .gitignore: shards live in DVC (one .dvc file each, in Git), never in Git themselves."""
KEY_PATTERN = re.compile(r"[0-9a-f]{64}")
ANSWER_TYPES = {"text": (str, type(None)), "model": (str,), "finish_reason": (str, type(None)),
                "tokens_in": (int,), "tokens_out": (int,)}
"""Every field of a shared answer and the JSON types it may hold (the fields of answer_cache.Answer)."""


@dataclass(frozen=True)
class Exported:
    """What `export_answers` did."""

    shard: Path | None
    """The shard written (None when the folder already held every local answer)."""
    new: int
    """Answers written to the shard."""
    shared: int
    """Answers the folder held before."""


@dataclass(frozen=True)
class Imported:
    """What `import_answers` did."""

    shards: int
    answers: int
    """Distinct answers in the folder."""
    added: int
    """Answers the local cache lacked and now holds."""
    present: int
    """Answers the local cache already held (kept as they were)."""
    differing: int
    """Of those present, how many hold another answer than the folder's (the local one is kept)."""


def read_shared(folder: str | Path) -> tuple[dict[str, dict], int]:
    """Every answer in the folder's shards by key (the first shard in name order wins a duplicate key), and the
    number of shards. UserError naming the file and line for anything that is not a shared answer."""
    folder = Path(folder)
    answers: dict[str, dict] = {}
    shards = sorted(folder.glob("*.jsonl"))
    for shard in shards:
        for number, line in enumerate(shard.read_text(encoding="utf-8").splitlines(), start=1):
            key, answer = _parse_line(line, f"{shard}:{number}")
            answers.setdefault(key, answer)
    return answers, len(shards)


def local_answers(cache_dir: str | Path) -> dict[str, dict]:
    """Every answer of the local cache by key ({} when the cache directory does not exist)."""
    if not Path(cache_dir).is_dir():
        return {}
    with open_cache(str(cache_dir)) as cache:
        return {key: cache[key] for key in cache}


def export_answers(cache_dir: str | Path, folder: str | Path = SHARED_ANSWERS) -> Exported:
    """Write the local answers the folder lacks as one new shard (atomically); nothing when it lacks none."""
    shared, _ = read_shared(folder)
    new = {key: answer for key, answer in local_answers(cache_dir).items() if key not in shared}
    if not new:
        return Exported(shard=None, new=0, shared=len(shared))
    lines = []
    for key in sorted(new):
        _check_answer(new[key], f"{cache_dir} (key {key})")
        lines.append(json.dumps({"key": key, "answer": new[key]}, sort_keys=True, ensure_ascii=False) + "\n")
    content = "".join(lines)
    shard = Path(folder) / f"{hashlib.sha256(content.encode('utf-8')).hexdigest()[:20]}.jsonl"
    write_text(shard, content)
    if not (Path(folder) / ".gitignore").exists():
        write_text(Path(folder) / ".gitignore", GITIGNORE)
    return Exported(shard=shard, new=len(new), shared=len(shared))


def import_answers(cache_dir: str | Path, folder: str | Path = SHARED_ANSWERS) -> Imported:
    """Add the folder's answers that the local cache lacks; answers the cache holds are never replaced."""
    if not Path(folder).is_dir():
        raise UserError(f"llm-cache import: folder {folder} not found; fetch the team's answers with `git pull && "
                        f"dvc pull` (a teammate shares them with `mdpr llm-cache export` and `dvc add`).")
    shared, shards = read_shared(folder)  # every line checked before the cache is touched
    added = differing = 0
    with open_cache(str(cache_dir)) as cache:
        for key, answer in shared.items():
            if cache.add(key, answer):  # stores only when the key is absent
                added += 1
            elif cache.get(key) != answer:
                differing += 1
    return Imported(shards=shards, answers=len(shared), added=added, present=len(shared) - added,
                    differing=differing)


def _parse_line(line: str, where: str) -> tuple[str, dict]:
    """(key, answer) of one shard line; UserError unless it is exactly a key and an answer."""
    try:
        entry = json.loads(line)
    except ValueError:
        raise UserError(f"{where}: not a JSON line of shared LLM answers; restore the folder with "
                        f"`dvc checkout` (or delete that file and export again).") from None
    if not isinstance(entry, dict) or set(entry) != {"key", "answer"} or not isinstance(entry["key"], str) \
            or not KEY_PATTERN.fullmatch(entry["key"]):
        raise UserError(f"{where}: a shared answer is {{\"key\": <64 hex digits>, \"answer\": {{...}}}}; restore the "
                        f"folder with `dvc checkout` (or delete that file and export again).")
    _check_answer(entry["answer"], where)
    return entry["key"], entry["answer"]


def _check_answer(answer, where: str) -> None:
    """UserError unless `answer` holds exactly the fields of a cached Answer, with their types."""
    expected = [field.name for field in fields(Answer)]
    if not isinstance(answer, dict) or sorted(answer) != sorted(expected) or any(
            not isinstance(answer[name], ANSWER_TYPES[name]) or isinstance(answer[name], bool) for name in expected):
        raise UserError(f"{where}: an answer holds exactly {', '.join(expected)} (text and finish_reason may be "
                        f"null); restore it with `dvc checkout` (or delete that file and export again).")
