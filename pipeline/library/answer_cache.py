"""The LLM answer cache: one JSON answer per canonical request, on disk, never evicted.

    cache = open_cache(".cache/llm")
    key = request_key(llm_params, messages)        # sha256 of (model, messages, temperature, seed, max_tokens)
    cache.get(key) -> {"text": ..., "model": ..., "finish_reason": ..., "tokens_in": ..., "tokens_out": ...}

diskcache with JSON serialisation (no pickled objects) and no eviction. The key is built from the request alone:
never the API key nor the server URL, so moving to another server with the same model reuses the answers, and
nothing secret is ever stored.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

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
    """The response cache (JSON on disk, never evicted)."""
    import diskcache

    try:
        return diskcache.Cache(cache_dir, disk=diskcache.JSONDisk, eviction_policy="none", size_limit=2**40)
    except OSError as err:
        raise UserError(f"llm: cannot open the response cache llm.cache_dir = {cache_dir} ({err.strerror}); "
                        f"choose a writable local directory.") from None
