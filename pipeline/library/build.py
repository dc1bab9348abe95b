"""The semantic library: V = len(dimensions) x per_dimension descriptions per class, from one of three backends.

    records, summary = build_library(class_names, contrasts, llm_params, library_params)   # taxonomy=[...] (inat)
    check_fallbacks(summary, llm_params, library_params)     # UserError above library.max_fallback_fraction
    print(format_summary(summary))

BACKENDS (llm.backend), each `(class_names, maker, progress) -> (records, summary fields)`:
- `openai` asks any OpenAI-compatible server (pipeline/library/asking.py; the client with cache, concurrency and
  retries is pipeline/library/llm.py), validates every answer and falls back explicitly;
- `offline` writes deterministic stand-in text from class names (source `offline`);
- `file` imports a descriptor JSON (pipeline/library/descriptor_file.py).

Record fields: see pipeline/library/records.py. Token fields: tokens spent on that description, re-asks included, as
reported by the server (replayed from the cache on a rerun, so the file does not change); the summary's
tokens_in/out count only what this run sent. A contrast class equal to the class's own name (ImageNet lists
'missile' twice) is treated as no contrast.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict

from pipeline.config.library_params import LibraryParams, LLMParams
from pipeline.core.errors import UserError
from pipeline.library.asking import ask_llm
from pipeline.library.descriptions import normalise_name
from pipeline.library.descriptor_file import file_records, file_summary
from pipeline.library.llm import LLMStats
from pipeline.library.records import RecordMaker


def offline_records(class_names: list[str], maker: RecordMaker, progress: bool) -> tuple[list[dict], dict]:
    """The `offline` backend: every class's V stand-in records."""
    return [record for i, name in enumerate(class_names) for record in maker.offline(i, name)], {}


def record_maker(class_names: list[str], contrasts: list[str | None], llm: LLMParams, lib: LibraryParams,
                 taxonomy: list[str] | None = None) -> RecordMaker:
    """The RecordMaker of a run (shared with `mdpr plan`, which renders the same requests without sending them); a
    contrast class equal to the class's own name counts as none."""
    if len(contrasts) != len(class_names):
        raise ValueError(f"{len(contrasts)} contrasts for {len(class_names)} classes")
    contrasts = [None if c is None or normalise_name(c) == normalise_name(n) else c
                 for n, c in zip(class_names, contrasts)]
    return RecordMaker(llm, lib, contrasts, taxonomy)


BACKENDS = {"offline": offline_records, "openai": ask_llm, "file": file_records}
"""llm.backend -> the function that writes the records."""
NO_FALLBACKS = {**asdict(LLMStats()), "reasks": 0, "fallbacks": 0, "fallback_classes": [], "fallback_reasons": {}}
"""Summary fields of a run that sent no request."""


def build_library(class_names: list[str], contrasts: list[str | None], llm: LLMParams, lib: LibraryParams,
                  progress: bool = True, taxonomy: list[str] | None = None) -> tuple[list[dict], dict]:
    """Library records sorted by (class_index, slot), and a summary of what it took; `taxonomy` (one string per
    class, classes.json) goes into the prompts' [context] section."""
    maker = record_maker(class_names, contrasts, llm, lib, taxonomy)
    records, extra = BACKENDS[llm.backend](class_names, maker, progress)
    records.sort(key=lambda r: (r["class_index"], r["slot"]))
    summary = {"backend": llm.backend, "classes": len(class_names), "descriptions": len(records),
               "absent_slots": len(class_names) * len(maker.slots) - len(records),
               "by_source": dict(sorted(Counter(r["source"] for r in records).items())), **NO_FALLBACKS, **extra}
    return records, summary


FIXES = {"connection error": "is the server at {url} running and reachable?",
         "timeout": "the server is slow or overloaded: raise llm.timeout_s or lower llm.concurrency",
         "malformed response": "is {url} an OpenAI-compatible /v1 endpoint (not a web page)?",
         "HTTP 429": "the server rate-limits: lower llm.concurrency or raise llm.max_retries",
         "HTTP 5": "the server fails: check its log, or retry later",
         "HTTP 4": "the server refuses the requests: check llm.model and llm.max_tokens",
         "rejected": "the model's answers are unusable: raise library.max_reasks or llm.max_tokens, or try another "
                     "llm.model"}
"""The first words of a fallback cause -> what to check (the most frequent cause's fix is printed)."""


def check_fallbacks(summary: dict, llm: LLMParams, lib: LibraryParams) -> None:
    """UserError when more than library.max_fallback_fraction of the descriptions fell back: one line with the
    counts by cause and what to do. Answers received stay cached, so the rerun asks only for the missing ones."""
    total = max(1, summary["descriptions"])
    if summary["fallbacks"] / total <= lib.max_fallback_fraction:
        return
    causes = summary["fallback_reasons"]
    fix = next((text for prefix, text in FIXES.items() if next(iter(causes)).startswith(prefix)), "see the causes")
    received = summary["descriptions"] - summary["fallbacks"]
    raise UserError(
        f"library: {summary['fallbacks']} of {summary['descriptions']} descriptions "
        f"({summary['fallbacks'] / total:.0%}) fell back to offline text, above library.max_fallback_fraction = "
        f"{lib.max_fallback_fraction} ({', '.join(f'{cause} {n}' for cause, n in causes.items())}); nothing "
        f"written. {fix.format(url=llm.base_url or 'api.openai.com')}; then rerun: the {received} answers received "
        f"are cached and will not be asked again (or raise library.max_fallback_fraction to accept the fallbacks).")


def format_summary(summary: dict, output: str | None = None) -> str:
    """The summary as one line for the terminal."""
    sources = ", ".join(f"{source} {count}" for source, count in summary["by_source"].items()) or "none"
    line = (f"library: {summary['descriptions']} descriptions for {summary['classes']} classes ({sources}; "
            f"{summary['absent_slots']} slots absent) | backend {summary['backend']}")
    if summary["backend"] == "openai":
        line += (f" | requests {summary['requests']}, cache hits {summary['cache_hits']}, "
                 f"retries {summary['retries']}, "
                 f"failures {summary['failures']}, re-asks {summary['reasks']} | tokens {summary['tokens_in']} in, "
                 f"{summary['tokens_out']} out")
        if summary["model_mismatches"]:
            line += f" | answers from another model name: {summary['model_mismatches']}"
    if summary["fallbacks"]:
        classes = summary["fallback_classes"]
        shown = ", ".join(classes[:10]) + (f" and {len(classes) - 10} more" if len(classes) > 10 else "")
        reasons = ", ".join(f"{kind} {n}" for kind, n in summary["fallback_reasons"].items())
        line += f" | FALLBACKS {summary['fallbacks']} ({reasons}) in: {shown}"
    if summary["backend"] == "file":
        line += file_summary(summary)
    return line + (f" -> {output}" if output else "")
