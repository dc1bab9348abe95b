"""Stage `library`: the five-dimension description library, into artifacts/library/library.jsonl.

    mdpr library            # reads params.yaml: llm, library (and $llm.api_key_env for the openai backend)

Reads classes.json (class names) and confusion.json (each class's most-confused class, named in the `differential`
prompt) and prompts/<dimension>.txt. LLM answers are cached under llm.cache_dir (outside the DVC outs): a rerun
makes zero requests and an interrupted run resumes. Prints a one-line summary (requests, cache hits, retries,
fallbacks and the classes that needed them).
"""
from __future__ import annotations

import json
from pathlib import Path

from pipeline import paths
from pipeline.atomic import write_jsonl
from pipeline.errors import UserError
from pipeline.library import build_library, format_summary
from pipeline.params import LibraryParams, LLMParams, load_params

CLASSES_JSON = paths.CLASSES
CONFUSION_JSON = paths.CONFUSION
LIBRARY_JSONL = paths.LIBRARY


def _read_json(path: Path, made_by: str) -> dict:
    if not Path(path).is_file():
        raise UserError(f"{path} not found; run `{made_by}` (or `dvc repro`) first.")
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as err:
        raise UserError(f"{path} is not valid JSON ({err}); rerun `{made_by}`.") from None


def read_class_names() -> list[str]:
    """Class names from classes.json."""
    names = _read_json(CLASSES_JSON, "mdpr prepare").get("names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise UserError(f"{CLASSES_JSON} has no list of class names under 'names'; rerun `mdpr prepare`.")
    return names


def read_contrasts(class_names: list[str]) -> list[str | None]:
    """Each class's most-confused class name from confusion.json (None when it lists none)."""
    entries = _read_json(CONFUSION_JSON, "mdpr confusion").get("classes") or []
    by_index = {entry.get("index"): entry for entry in entries if isinstance(entry, dict)}
    contrasts = []
    for index, name in enumerate(class_names):
        entry = by_index.get(index)
        if entry is None or entry.get("name") != name:
            raise UserError(f"{CONFUSION_JSON} does not match {CLASSES_JSON} at class {index} ({name!r}); "
                            f"rerun `mdpr confusion`.")
        confused = entry.get("confused_with") or []
        contrasts.append(confused[0]["name"] if confused else None)
    return contrasts


def run(params_path: str = "params.yaml") -> dict:
    """Build the library, write it atomically, print the summary; returns the summary."""
    llm = load_params(params_path, LLMParams)
    lib = load_params(params_path, LibraryParams)
    class_names = read_class_names()
    contrasts = read_contrasts(class_names)
    records, summary = build_library(class_names, contrasts, llm, lib)
    write_jsonl(LIBRARY_JSONL, records)
    print(format_summary(summary, str(LIBRARY_JSONL)))
    return summary
