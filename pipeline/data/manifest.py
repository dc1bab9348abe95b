"""The prepare stage's outputs, read and written: manifest.csv and classes.json.

    write_manifest(paths.MANIFEST, rows); write_classes(paths.CLASSES, names, rows, "synthetic-lt")
    classes = read_classes(paths.CLASSES); rows = read_manifest(paths.MANIFEST, classes)   # (split, id, label) rows
    rows = read_manifest(paths.MANIFEST)          # the same, checked against the classes.json beside it

Kept apart from the dataset builders (pipeline/data/datasets.py) so the stages that only read these files do not
depend on the dataset code. The split names and the many/medium/few thresholds live here, beside classes.json.

Both files are checked where they are read, so a file cut by a crash, a full disk or a stray edit is one clear error
even when it still parses: classes.json must hold every field, its class_hash must match its names and its counts
must agree with each other; manifest.csv must have exactly the row count and sha256 that classes.json records for it
(`manifest`), written from the same rows by `prepare`.
"""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

from pipeline.core import paths
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
REPREPARE = "rerun `mdpr prepare`, or `dvc repro` (DVC sees the damaged output and restores it from its cache)"
"""How to recover a damaged classes.json or manifest.csv."""
CLASSES_FIELDS = ("names", "train_counts", "groups", "class_hash", "splits", "manifest")
"""Fields every classes.json holds (written by classes_record)."""
GROUP_THRESHOLDS = {"many": f"> {MANY_ABOVE}", "medium": f"{FEW_BELOW}..{MANY_ABOVE}", "few": f"< {FEW_BELOW}"}


def group_of(count: int) -> str:
    """many (> 100 training images), medium (20..100) or few (< 20)."""
    return "many" if count > MANY_ABOVE else ("few" if count < FEW_BELOW else "medium")


def class_hash(names: list[str]) -> str:
    """sha256 of the ordered class list: ties every cache to the classes it was made for."""
    return hashlib.sha256(json.dumps(list(names)).encode()).hexdigest()[:16]


def manifest_text(rows: list[tuple[str, str, int]]) -> str:
    """The manifest's CSV text (split,id,label): what write_manifest writes and classes.json's hash covers."""
    return "split,id,label\n" + "".join(f"{s},{_csv_field(i)},{label}\n" for s, i, label in rows)


def write_manifest(path: Path, rows: list[tuple[str, str, int]]) -> None:
    """The manifest as CSV (split,id,label), atomically."""
    write_text(path, manifest_text(rows))


def _csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(ch in value for ch in ',"\n') else value


def read_manifest(path: Path, classes: dict | None = None) -> list[tuple[str, str, int]]:
    """Rows of a manifest written by `write_manifest`, checked against the row count and sha256 that classes.json
    records for it (`classes` from read_classes, else the classes.json beside it): a missing, cut or edited file is a
    UserError."""
    if not Path(path).is_file():
        raise UserError(f"{paths.located(path)} not found; run `mdpr prepare` (or `dvc repro prepare`) first.")
    data = Path(path).read_bytes()
    expected = (classes or read_classes(Path(path).parent / "classes.json"))["manifest"]
    if hashlib.sha256(data).hexdigest() != expected["sha256"]:
        rows = max(data.count(b"\n") - 1, 0)
        found = f"{rows} rows where classes.json records {expected['rows']}" if rows != expected["rows"] else \
            "its content differs from the sha256 classes.json records"
        raise UserError(f"{path} does not match classes.json ({found}): it was cut or edited after `mdpr prepare`; "
                        f"{REPREPARE}.")
    with open(path, newline="", encoding="utf-8") as handle:
        return [(r["split"], r["id"], int(r["label"])) for r in csv.DictReader(handle)]


def train_counts(rows: list[tuple[str, str, int]], num_classes: int) -> list[int]:
    """Training images per class."""
    counts = [0] * num_classes
    for split, _id, label in rows:
        if split == "train":
            counts[label] += 1
    return counts


def classes_record(names: list[str], rows: list[tuple[str, str, int]], dataset_name: str) -> dict:
    """The content of classes.json: names, train counts, groups, the class-list hash, split sizes, and the row count
    and sha256 of the manifest written from the same rows."""
    counts = train_counts(rows, len(names))
    return {"dataset": dataset_name, "names": list(names), "train_counts": counts,
            "groups": [group_of(n) for n in counts], "group_thresholds": GROUP_THRESHOLDS,
            "class_hash": class_hash(names),
            "splits": {s: sum(1 for r in rows if r[0] == s) for s in SPLITS},
            "manifest": {"rows": len(rows), "sha256": hashlib.sha256(manifest_text(rows).encode()).hexdigest()}}


def write_classes(path: Path, names: list[str], rows: list[tuple[str, str, int]], dataset_name: str) -> dict:
    """classes.json for these classes and rows, written atomically; returns its content."""
    record = classes_record(names, rows, dataset_name)
    write_json(path, record)
    return record


def read_classes(path: Path) -> dict:
    """classes.json, checked: present, JSON, every field there, names matching class_hash, counts consistent."""
    if not Path(path).is_file():
        raise UserError(f"{paths.located(path)} not found; run `mdpr prepare` (or `dvc repro prepare`) first.")
    try:
        classes = json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not valid JSON ({err}): it was cut or edited; {REPREPARE}.") from None
    problem = _classes_problem(classes)
    if problem:
        raise UserError(f"{path} is damaged ({problem}): it was cut or edited after `mdpr prepare`; {REPREPARE}.")
    return classes


def _classes_problem(classes) -> str | None:
    """What is wrong with a parsed classes.json, or None."""
    if not isinstance(classes, dict):
        return "not a JSON object"
    missing = [key for key in CLASSES_FIELDS if key not in classes]
    if missing:
        return f"no {', '.join(missing)}"
    names = classes["names"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        return "'names' is not a list of class names"
    if classes["class_hash"] != class_hash(names):
        return f"its {len(names)} names do not match its class_hash"
    per_class = (classes["train_counts"], classes["groups"])
    if not all(isinstance(values, list) and len(values) == len(names) for values in per_class):
        return f"train_counts or groups do not have one entry per class ({len(names)})"
    splits, manifest = classes["splits"], classes["manifest"]
    if not isinstance(splits, dict) or not all(isinstance(n, int) for n in splits.values()) \
            or not isinstance(manifest, dict) or not isinstance(manifest.get("sha256"), str) \
            or manifest.get("rows") != sum(splits.values()):
        return "its manifest record does not match its split counts"
    return None
