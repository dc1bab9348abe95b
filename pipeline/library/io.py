"""library.jsonl written, and read back as a (C, V) table with the checks the embedding stage relies on.

    write_library(paths.LIBRARY, records)              # one JSON record per line, atomically
    table = read_library(paths.LIBRARY, class_names)
    table.texts        # the strings CLIP encodes, in (class, slot) order of table.mask's True cells
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core import paths
from pipeline.core.atomic import write_jsonl
from pipeline.core.errors import UserError
from pipeline.library.descriptions import clip_text


@dataclass
class LibraryTable:
    texts: list[str]          # CLIP strings of the present cells, row-major over (C, V)
    mask: np.ndarray          # (C, V) bool
    dimensions: list[str]     # (V,) dimension of each slot
    sha256: str               # of the library file


def write_library(path: Path, records: list[dict]) -> None:
    """The records as library.jsonl (sorted keys, one per line), atomically."""
    write_jsonl(path, records)


def read_library(path: Path, class_names: list[str]) -> LibraryTable:
    """Parse and validate library.jsonl against the class list."""
    if not Path(path).is_file():
        raise UserError(f"{paths.located(path)} not found; run `mdpr library` (or `dvc repro library`) first.")
    raw = Path(path).read_bytes()
    records = []
    for number, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise UserError(f"{path}, line {number}: not valid JSON; rerun `mdpr library`.") from None
    slot_dims: dict[int, str] = {}
    cells: dict[tuple[int, int], dict] = {}
    for record in records:
        c, slot = record.get("class_index"), record.get("slot")
        if not isinstance(c, int) or not 0 <= c < len(class_names) or record.get("class_name") != class_names[c]:
            raise UserError(f"{path}: record for class {c} ({record.get('class_name')!r}) does not match "
                            "classes.json; rerun `mdpr library` after `mdpr prepare`.")
        if slot_dims.setdefault(slot, record["dimension"]) != record["dimension"]:
            raise UserError(f"{path}: slot {slot} holds both {slot_dims[slot]} and {record['dimension']}.")
        cells[(c, slot)] = record
    num_slots = max(slot_dims) + 1 if slot_dims else 0
    mask = np.zeros((len(class_names), num_slots), bool)
    for c, slot in cells:
        mask[c, slot] = True
    _check_complete(path, class_names, cells, mask, slot_dims)
    texts = [clip_text(class_names[c], cells[(c, s)]["text"]) for c, s in zip(*np.nonzero(mask))]
    dims = [slot_dims.get(s, "") for s in range(num_slots)]
    return LibraryTable(texts, mask, dims, hashlib.sha256(raw).hexdigest())


def _check_complete(path, class_names, cells, mask, slot_dims) -> None:
    """Every class has descriptions; only file-imported classes may leave slots empty."""
    missing = [class_names[c] for c in range(len(class_names)) if not mask[c].any()]
    if missing:
        raise UserError(f"{path} has no description for {len(missing)} class(es) ({', '.join(missing[:5])}); "
                        "rerun `mdpr library`.")
    for c in range(len(class_names)):
        sources = {cells[(c, s)]["source"] for s in np.flatnonzero(mask[c])}
        absent = [slot_dims.get(s, f"slot {s}") for s in np.flatnonzero(~mask[c])]
        if absent and sources != {"file"}:
            raise UserError(f"{path}: class {class_names[c]!r} lacks the {absent[0]} dimension; rerun `mdpr library`.")
