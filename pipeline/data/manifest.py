"""The prepare stage's outputs, read and written: manifest.csv and classes.json.

    write_manifest(paths.MANIFEST, rows); rows = read_manifest(paths.MANIFEST)      # (split, id, label) rows
    write_classes(paths.CLASSES, names, rows, "synthetic-lt"); classes = read_classes(paths.CLASSES)

Kept apart from the dataset builders (pipeline/data/datasets.py) so the stages that only read these files do not
depend on the dataset code. The split names and the many/medium/few thresholds live here, beside classes.json.
"""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

from pipeline.core.atomic import write_json, write_text
from pipeline.core.errors import UserError

SPLITS = ("train", "val", "test")
"""Manifest splits, in manifest order."""
GROUPS = ("many", "medium", "few")
"""Long-tail groups of classes by training count."""
MANY_ABOVE = 100
"""A class with more training images than this is `many`."""
FEW_BELOW = 20
"""A class with fewer training images than this is `few`; the rest are `medium`."""
GROUP_THRESHOLDS = {"many": f"> {MANY_ABOVE}", "medium": f"{FEW_BELOW}..{MANY_ABOVE}", "few": f"< {FEW_BELOW}"}


def group_of(count: int) -> str:
    """many (> 100 training images), medium (20..100) or few (< 20)."""
    return "many" if count > MANY_ABOVE else ("few" if count < FEW_BELOW else "medium")


def class_hash(names: list[str]) -> str:
    """sha256 of the ordered class list: ties every cache to the classes it was made for."""
    return hashlib.sha256(json.dumps(list(names)).encode()).hexdigest()[:16]


def write_manifest(path: Path, rows: list[tuple[str, str, int]]) -> None:
    """The manifest as CSV (split,id,label), atomically."""
    write_text(path, "split,id,label\n" + "".join(f"{s},{_csv_field(i)},{label}\n" for s, i, label in rows))


def _csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(ch in value for ch in ',"\n') else value


def read_manifest(path: Path) -> list[tuple[str, str, int]]:
    """Rows of a manifest written by `write_manifest` (clear error when missing)."""
    if not Path(path).is_file():
        raise UserError(f"{path} not found; run `mdpr prepare` (or `dvc repro prepare`) first.")
    with open(path, newline="") as handle:
        return [(r["split"], r["id"], int(r["label"])) for r in csv.DictReader(handle)]


def train_counts(rows: list[tuple[str, str, int]], num_classes: int) -> list[int]:
    """Training images per class."""
    counts = [0] * num_classes
    for split, _id, label in rows:
        if split == "train":
            counts[label] += 1
    return counts


def classes_record(names: list[str], rows: list[tuple[str, str, int]], dataset_name: str) -> dict:
    """The content of classes.json: names, train counts, groups and the class-list hash."""
    counts = train_counts(rows, len(names))
    return {"dataset": dataset_name, "names": list(names), "train_counts": counts,
            "groups": [group_of(n) for n in counts], "group_thresholds": GROUP_THRESHOLDS,
            "class_hash": class_hash(names),
            "splits": {s: sum(1 for r in rows if r[0] == s) for s in SPLITS}}


def write_classes(path: Path, names: list[str], rows: list[tuple[str, str, int]], dataset_name: str) -> dict:
    """classes.json for these classes and rows, written atomically; returns its content."""
    record = classes_record(names, rows, dataset_name)
    write_json(path, record)
    return record


def read_classes(path: Path) -> dict:
    """classes.json, with a clear error when it is missing, not JSON, or has no list of class names."""
    if not Path(path).is_file():
        raise UserError(f"{path} not found; run `mdpr prepare` (or `dvc repro prepare`) first.")
    try:
        classes = json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as err:
        raise UserError(f"{path} is not valid JSON ({err}); rerun `mdpr prepare`.") from None
    names = classes.get("names") if isinstance(classes, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise UserError(f"{path} has no list of class names under 'names'; rerun `mdpr prepare`.")
    return classes
