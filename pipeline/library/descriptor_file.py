"""The `file` backend: import published descriptor JSON into library records.

    from pipeline.library.descriptor_file import file_records
    records, info = file_records(class_names, RecordMaker(llm_params, lib_params, contrasts))
    info            # {"missing_classes": ..., "truncated": ..., "dropped": ...}

Accepted shapes: `{class_name: [descriptions]}` (CuPL, classify_by_description) and
`{class_name: {dimension: [descriptions]}}`. Names match case-insensitively, with '_' read as a space and
whitespace collapsed; every class in the list (duplicates included, each under its own index) gets its entry.
- A plain list has no dimensions: descriptions fill the slots in order, dimension by dimension (slot = position),
  so with V = 5 the first five usable descriptions are used; a shorter list leaves the last slots absent.
- A per-dimension mapping fills each dimension's first `per_dimension` slots; dimensions it lacks stay absent.
- Texts are cleaned like LLM answers (bullets, quotes, labels); empty entries and refusals are dropped (counted);
  a text too long for CLIP is truncated at a word boundary to fit 77 tokens (counted), as CLIP would cut it anyway.
- Records carry source `file`, model and prompt_sha null, contrast_class null (the text was not written against
  this run's contrast), token counts 0.
"""
from __future__ import annotations

import json
from pathlib import Path

from pipeline.config.library_params import DIMENSIONS, LibraryParams
from pipeline.core.errors import UserError
from pipeline.library.descriptions import clean_answer, is_refusal, normalise_name, truncate_to_fit
from pipeline.library.records import RecordMaker

MAX_LISTED = 10
"""Missing class names quoted in the error message."""


def read_descriptor_file(path: str | None) -> dict[str, object]:
    """The descriptor JSON indexed by normalised class name (UserError for a missing or malformed file)."""
    if not path:
        raise UserError("library: llm.backend is file but library.file is not set; set library.file to a JSON "
                        "file {class_name: [descriptions]}.")
    if not Path(path).is_file():
        raise UserError(f"library: library.file = {path} not found; fix the path (relative to the project root).")
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(f"library: library.file = {path} is not valid UTF-8 JSON ({err}).") from None
    if not isinstance(data, dict):
        raise UserError(f"library: library.file = {path} must be a JSON object {{class_name: [descriptions]}}.")
    index: dict[str, object] = {}
    first_key: dict[str, str] = {}
    for key, entry in data.items():
        norm = normalise_name(key)
        if norm in index:
            raise UserError(f"library: library.file = {path} has two entries for one class ({first_key[norm]!r} and "
                            f"{key!r}); keep one.")
        index[norm], first_key[norm] = entry, key
    return index


def _strings(value, where: str) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise UserError(f"library: {where} must be a list of strings.")
    return values


def slot_groups(entry, lib: LibraryParams, where: str) -> list[tuple[int, int, list[str]]]:
    """(first slot, number of slots, raw texts) groups for one class's file entry: one per dimension, or one in all."""
    if isinstance(entry, dict):
        unknown = sorted(set(entry) - set(DIMENSIONS))
        if unknown:
            raise UserError(f"library: {where} has unknown dimension {unknown[0]!r}; allowed: {', '.join(DIMENSIONS)}.")
        return [(position * lib.per_dimension, lib.per_dimension,
                 _strings(entry.get(dimension, []), f"{where}.{dimension}"))
                for position, dimension in enumerate(lib.dimensions)]
    return [(0, len(lib.dimensions) * lib.per_dimension, _strings(entry, where))]


def file_records(class_names: list[str], maker: RecordMaker, progress: bool = False) -> tuple[list[dict], dict]:
    """The `file` backend: records for every class found in library.file (offline ones for missing classes when
    library.missing is offline)."""
    lib = maker.lib
    index = read_descriptor_file(lib.file)
    missing = [name for name in class_names if normalise_name(name) not in index]
    if missing and lib.missing == "error":
        listed = ", ".join(repr(name) for name in missing[:MAX_LISTED])
        more = f" and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
        raise UserError(f"library: {len(missing)} classes are missing from library.file = {lib.file}: {listed}{more}; "
                        f"add them, or set library.missing: offline to give them offline descriptions.")
    records, info = [], {"missing_classes": len(missing), "truncated": 0, "dropped": 0}
    for class_index, name in enumerate(class_names):
        entry = index.get(normalise_name(name))
        if entry is None:
            records += maker.offline(class_index, name)
            continue
        for first_slot, count, texts in slot_groups(entry, lib, f"library.file = {lib.file}, class {name!r}"):
            for offset, text in enumerate(_usable_texts(name, texts, count, info)):
                records.append(maker.make(class_index, name, first_slot + offset, text, source="file"))
    return records, info


def _usable_texts(name: str, texts: list[str], count: int, info: dict) -> list[str]:
    """The first `count` texts that survive cleaning (dropped and truncated ones are counted in `info`)."""
    usable = []
    for raw in texts:
        if len(usable) == count:
            break
        text = clean_answer(raw)
        fitted = truncate_to_fit(name, text) if text and not is_refusal(text) else ""
        if not fitted:
            info["dropped"] += 1
            continue
        info["truncated"] += fitted != text
        usable.append(fitted)
    return usable
