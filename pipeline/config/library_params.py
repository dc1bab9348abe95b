"""Params sections of the semantic library: confusion analysis, the LLM that writes descriptions, the library shape.

    llm, lib = load_sections("params.yaml", LLMParams, LibraryParams)     # pipeline.config.params
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from pipeline.config.schema import check

DIMENSIONS = ("general_appearance", "fine_grained_appearance", "functionality", "context", "differential")


@dataclass(frozen=True)
class ConfusionParams:
    """Section `confusion`: zero-shot confusion analysis on the training split."""

    SECTION = "confusion"
    top_k: int = 3
    """Most-confused other classes kept per class."""

    def validate(self) -> None:
        check(self, "top_k", self.top_k >= 1, "an integer >= 1")


@dataclass(frozen=True)
class LLMParams:
    """Section `llm`: who writes the descriptions."""

    SECTION = "llm"
    backend: Literal["offline", "openai", "file"] = "offline"
    """offline: deterministic text from class names; openai: any OpenAI-compatible server; file: import library.file."""
    base_url: Optional[str] = None
    """Server URL, e.g. http://127.0.0.1:8000/v1 (vLLM), http://localhost:11434/v1 (Ollama); null = OpenAI."""
    model: str = "gpt-4o-mini"
    """Model name sent to the server (also part of the cache key)."""
    api_key_env: str = "OPENAI_API_KEY"
    """Name of the environment variable holding the API key (the key itself is never written anywhere)."""
    temperature: float = 0.0
    """Sampling temperature."""
    max_tokens: int = 80
    """Upper bound on tokens per answer."""
    seed: int = 0
    """Sampling seed sent to servers that honour it (part of the cache key)."""
    concurrency: int = 8
    """Requests in flight at once."""
    timeout_s: float = 60.0
    """Seconds before one request is abandoned and retried."""
    max_retries: int = 4
    """Retries per request on 429, 5xx, timeouts and connection errors (exponential backoff, honours Retry-After)."""
    cache_dir: str = ".cache/llm"
    """Response cache (diskcache, JSON, no eviction): a rerun makes zero requests; an interrupted run resumes."""
    requests_per_minute: Optional[int] = None
    """Pace requests evenly to stay under the server's requests-per-minute limit (null = no pacing; see README)."""
    tokens_per_minute: Optional[int] = None
    """Pace requests to stay under a tokens-per-minute limit, counting prompt characters / 4 + max_tokens per request
    (null = no pacing)."""

    def validate(self) -> None:
        check(self, "temperature", 0 <= self.temperature <= 2, "a number in [0, 2]")
        check(self, "max_tokens", self.max_tokens >= 8, "an integer >= 8")
        check(self, "concurrency", self.concurrency >= 1, "an integer >= 1")
        check(self, "timeout_s", self.timeout_s > 0, "a number > 0")
        check(self, "max_retries", self.max_retries >= 0, "an integer >= 0")
        check(self, "api_key_env", self.api_key_env.isidentifier(), "an environment variable name")
        for key in ("requests_per_minute", "tokens_per_minute"):
            check(self, key, getattr(self, key) is None or getattr(self, key) >= 1, "null or an integer >= 1")


@dataclass(frozen=True)
class LibraryParams:
    """Section `library`: what the semantic library holds."""

    SECTION = "library"
    dimensions: tuple[str, ...] = DIMENSIONS
    """Dimensions described for every class (any of the five, in this order)."""
    per_dimension: int = 1
    """Descriptions per class and dimension (V = len(dimensions) * per_dimension)."""
    file: str = "data/descriptors"
    """llm.backend file: JSON {class_name: [descriptions]} to import. A DVC dependency of library (editing it reruns
    it), so never null: the default, data/descriptors, is a committed placeholder folder, unused by other backends."""
    missing: Literal["error", "offline"] = "error"
    """llm.backend file: a class absent from the file is an error, or gets offline descriptions (source: offline)."""
    max_reasks: int = 2
    """Times an invalid answer (empty, refusal, too long for CLIP) is asked again before the explicit fallback."""
    max_fallback_fraction: float = 0.02
    """Largest share of descriptions that may fall back to offline text (failed requests, rejected answers): above
    it the stage fails, writes nothing and keeps the answers received in the cache (a rerun asks only the rest)."""

    def validate(self) -> None:
        bad = [d for d in self.dimensions if d not in DIMENSIONS]
        distinct = len(set(self.dimensions)) == len(self.dimensions)
        check(self, "dimensions", bool(self.dimensions) and not bad and distinct,
               f"a non-empty list of distinct names from {', '.join(DIMENSIONS)}")
        check(self, "per_dimension", 1 <= self.per_dimension <= 20, "an integer in 1..20")
        check(self, "max_reasks", self.max_reasks >= 0, "an integer >= 0")
        check(self, "max_fallback_fraction", 0 <= self.max_fallback_fraction <= 1, "a number in [0, 1]")
