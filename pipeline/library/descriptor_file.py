"""The `file` backend: import published descriptor JSON into library records.

    from pipeline.library.descriptor_file import file_records
    records, info = file_records(class_names, RecordMaker(llm_params, lib_params, contrasts))
    info            # {"missing_classes": ..., "truncated": ..., "dropped": ...}

Accepted shapes: `{class_name: [descriptions]}` (CuPL, classify_by_description) and
`{class_name: {dimension: [descriptions]}}`. Names match case-insensitively and in Unicode NFC (a decomposed 'café'
is the composed one), with '_' read as a space and whitespace collapsed (normalise_name); every class in the list
(duplicates included, each under its own index) gets its entry. A key given twice (exactly, or two spellings of one
name) is refused: JSON parsers keep only the last one silently.
- A plain list has no dimensions: descriptions fill the slots in order, dimension by dimension (slot = position),
  so with V = 5 the first five usable descriptions are used; a shorter list leaves the last slots absent.
- A per-dimension mapping fills each dimension's first `per_dimension` slots; dimensions it lacks stay absent.
- Texts are cleaned like LLM answers (bullets, quotes, labels); empty entries and refusals are dropped (counted);
  a text too long for CLIP is truncated at a word boundary to fit 77 tokens (counted), as CLIP would cut it anyway.
- Records carry source `file`, model and prompt_sha null, contrast_class null (the text was not written against
  this run's contrast), token counts 0.

The summary (`file_summary`) says what was not imported: file keys that match no class (a name spelt otherwise
than in the class list, so the class it meant gets nothing or another entry), descriptions beyond the slots,
unusable and truncated ones, the entries several classes share (ImageNet's two 'missile' and two 'sunglasses' get
the same descriptions), and the names of the classes given offline text by `library.missing: offline`.
"""
from __future__ import annotations

import json
from pathlib import Path

from pipeline.config.library_params import DIMENSIONS, LibraryParams
from pipeline.core import paths
from pipeline.core.errors import UserError
from pipeline.library.descriptions import clean_answer, is_refusal, normalise_name, truncate_to_fit
from pipeline.library.records import RecordMaker

MAX_LISTED = 10
"""Class names or file keys quoted in an error message or the summary."""


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _refuse_duplicates(pairs: list[tuple[str, object]]) -> dict:
    """json object_pairs_hook: a dict, or _DuplicateKey when a key appears twice in one object."""
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def quoted(names: list[str]) -> str:
    """'a', 'b', ... and N more (at most MAX_LISTED names)."""
    return listed([repr(name) for name in names])


def listed(items: list[str]) -> str:
    """a, b, ... and N more (at most MAX_LISTED items)."""
    return ", ".join(items[:MAX_LISTED]) + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def read_descriptor_file(path: str | None) -> dict[str, object]:
    """The descriptor JSON indexed by normalised class name (UserError for a missing or malformed file, or a key
    given twice)."""
    return _index(_read_json(path), path)[0]


def _read_json(path: str | None) -> dict:
    """The descriptor file's JSON object, refusing a key given twice in one object."""
    if not path:
        raise UserError("library: llm.backend is file but library.file is not set; set library.file to a JSON "
                        "file {class_name: [descriptions]}.")
    if Path(path).is_dir():
        raise UserError(f"library: llm.backend is file but library.file = {path} is a folder (the default is the "
                        f"placeholder {paths.DESCRIPTORS}); set library.file to a JSON file {{class_name: "
                        f"[descriptions]}}.")
    if not Path(path).is_file():
        raise UserError(f"library: library.file = {path} not found; fix the path (relative to the project root).")
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"), object_pairs_hook=_refuse_duplicates)
    except _DuplicateKey as err:
        raise UserError(f"library: library.file = {path} has the key {err.key!r} twice in one object (JSON keeps only "
                        f"the last one); merge them into one entry.") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(f"library: library.file = {path} is not valid UTF-8 JSON ({err}).") from None
    if not isinstance(data, dict):
        raise UserError(f"library: library.file = {path} must be a JSON object {{class_name: [descriptions]}}.")
    return data


def _index(data: dict, path: str) -> tuple[dict[str, object], dict[str, str]]:
    """Entries by normalised class name, and each normalised name's key as written in the file."""
    index: dict[str, object] = {}
    first_key: dict[str, str] = {}
    for key, entry in data.items():
        norm = normalise_name(key)
        if norm in index:
            raise UserError(f"library: library.file = {path} has two entries for one class ({first_key[norm]!r} and "
                            f"{key!r}); keep one.")
        index[norm], first_key[norm] = entry, key
    return index, first_key


def _strings(value, where: str) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise UserError(f"library: {where} must be a list of strings.")
    return values


def slot_groups(entry, lib: LibraryParams, where: str) -> list[tuple[int, int, list[str]]]:
    """(first slot, number of slots, raw texts) groups for one class's file entry: one per dimension, or one in all.
    A dimension the file gives but library.dimensions leaves out is a group of no slots (its texts count as unused)."""
    if isinstance(entry, dict):
        unknown = sorted(set(entry) - set(DIMENSIONS))
        if unknown:
            raise UserError(f"library: {where} has unknown dimension {unknown[0]!r}; allowed: {', '.join(DIMENSIONS)}.")
        left_out = [dimension for dimension in DIMENSIONS if dimension in entry and dimension not in lib.dimensions]
        return [(position * lib.per_dimension, lib.per_dimension,
                 _strings(entry.get(dimension, []), f"{where}.{dimension}"))
                for position, dimension in enumerate(lib.dimensions)] + \
            [(0, 0, _strings(entry[dimension], f"{where}.{dimension}")) for dimension in left_out]
    return [(0, len(lib.dimensions) * lib.per_dimension, _strings(entry, where))]


def file_records(class_names: list[str], maker: RecordMaker, progress: bool = False) -> tuple[list[dict], dict]:
    """The `file` backend: records for every class found in library.file (offline ones for missing classes when
    library.missing is offline), and the summary fields of `file_summary`."""
    lib = maker.lib
    index, keys = _index(_read_json(lib.file), lib.file)
    wanted = {normalise_name(name) for name in class_names}
    missing = [name for name in class_names if normalise_name(name) not in index]
    if missing and lib.missing == "error":
        raise UserError(f"library: {len(missing)} classes are missing from library.file = {lib.file}: "
                        f"{quoted(missing)}; add them, or set library.missing: offline to give them offline "
                        f"descriptions.")
    records, info = [], {"missing_classes": len(missing), "offline_classes": missing, "truncated": 0, "dropped": 0,
                         "beyond_slots": 0, "unmatched_keys": [keys[norm] for norm in index if norm not in wanted],
            "shared_entries": _shared_entries(class_names, index, keys)}
    counted = set()  # entries whose unused descriptions are counted (two classes may share one entry)
    for class_index, name in enumerate(class_names):
        entry = index.get(normalise_name(name))
        if entry is None:
            records += maker.offline(class_index, name)
            continue
        tally = info if normalise_name(name) not in counted else {"truncated": 0, "dropped": 0, "beyond_slots": 0}
        counted.add(normalise_name(name))
        for first_slot, count, texts in slot_groups(entry, lib, f"library.file = {lib.file}, class {name!r}"):
            for offset, text in enumerate(_usable_texts(name, texts, count, tally)):
                records.append(maker.make(class_index, name, first_slot + offset, text, source="file"))
    return records, info


def _shared_entries(class_names: list[str], index: dict, keys: dict[str, str]) -> list[str]:
    """File keys that serve several classes (ImageNet's two 'missile'), each with the class indices, as quoted in the
    summary: "'missile' (classes 657, 744)"."""
    users: dict[str, list[int]] = {}
    for class_index, name in enumerate(class_names):
        if normalise_name(name) in index:
            users.setdefault(normalise_name(name), []).append(class_index)
    return [f"{keys[norm]!r} (classes {', '.join(map(str, indices))})" for norm, indices in users.items()
            if len(indices) > 1]


def _usable_texts(name: str, texts: list[str], count: int, tally: dict) -> list[str]:
    """The first `count` texts that survive cleaning (dropped, truncated and unused ones are counted in `tally`)."""
    usable, read = [], 0
    for raw in texts:
        if len(usable) == count:
            break
        read += 1
        text = clean_answer(raw)
        fitted = truncate_to_fit(name, text) if text and not is_refusal(text) else ""
        if not fitted:
            tally["dropped"] += 1
            continue
        tally["truncated"] += fitted != text
        usable.append(fitted)
    tally["beyond_slots"] += len(texts) - read
    return usable


def file_summary(summary: dict) -> str:
    """The file backend's part of the library summary line: what the file gave that was not used, and why."""
    line = (f" | file: unused beyond the slots {summary['beyond_slots']}, unusable dropped {summary['dropped']}, "
            f"truncated to fit CLIP {summary['truncated']}")
    if summary["unmatched_keys"]:
        line += (f" | file keys matching no class ({len(summary['unmatched_keys'])}; check their spelling): "
                 f"{quoted(summary['unmatched_keys'])}")
    if summary.get("shared_entries"):
        shared = summary["shared_entries"]
        line += (f" | entries shared by several classes, which get the same descriptions ({len(shared)}): "
                 f"{listed(shared)}")
    if summary["offline_classes"]:
        line += (f" | OFFLINE text for classes missing from the file ({len(summary['offline_classes'])}): "
                 f"{quoted(summary['offline_classes'])}")
    return line
