"""The LLM answer cache: one JSON answer per canonical request, on disk, never evicted.

    cache = open_cache(".cache/llm")
    key = request_key(llm_params, messages)        # sha256 of (model, messages, temperature, seed, max_tokens)
    cache.get(key) -> {"text": ..., "model": ..., "finish_reason": ..., "tokens_in": ..., "tokens_out": ...}

diskcache with JSON serialisation (no pickled objects) and no eviction. The key is built from the request alone:
never the API key nor the server URL, so moving to another server with the same model reuses the answers, and
nothing secret is ever stored. The database is checked when opened (sqlite quick_check): a cache cut by a crash or
a full disk is one clear error that says to move it aside, never a traceback.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import shlex
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from pipeline.config.library_params import LLMParams
from pipeline.core.errors import UserError


@dataclass(frozen=True)
class Answer:
    """One chat completion, as cached."""

    text: str | None
    model: str
    finish_reason: str | None
    tokens_in: int
    tokens_out: int



def request_key(llm: LLMParams, messages: list[dict]) -> str:
    """Cache key: sha256 of the canonical JSON request (model, messages, temperature, seed, max_tokens)."""
    request = {"model": llm.model, "messages": messages, "temperature": llm.temperature, "seed": llm.seed,
               "max_tokens": llm.max_tokens}
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def open_cache(cache_dir: str):
    """The response cache (JSON on disk, never evicted); a damaged database is a UserError naming the fix."""
    import diskcache

    try:
        cache = diskcache.Cache(cache_dir, disk=diskcache.JSONDisk, eviction_policy="none", size_limit=2**40)
        _check_database(Path(cache_dir) / diskcache.core.DBNAME)
    except sqlite3.DatabaseError as err:
        folder = shlex.quote(str(Path(cache_dir)))
        raise UserError(f"llm: the response cache llm.cache_dir = {cache_dir} is damaged (sqlite: {err}); move it "
                        f"aside (`mv {folder} {folder}.damaged`) and rerun: the answers it held will be asked "
                        f"again.") from None
    except OSError as err:
        raise UserError(f"llm: cannot open the response cache llm.cache_dir = {cache_dir} ({err.strerror}); "
                        f"choose a writable local directory.") from None
    return cache


def _check_database(path: Path) -> None:
    """sqlite's quick_check over every page of the cache database (a truncated file can still open)."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        result = connection.execute("PRAGMA quick_check").fetchone()[0]
    if result != "ok":
        raise sqlite3.DatabaseError(result)
