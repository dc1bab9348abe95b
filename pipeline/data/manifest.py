"""The prepare stage's outputs, read and written: manifest.csv and classes.json.

    write_manifest(paths.MANIFEST, rows)                                           # (split, id, label) rows
    write_classes(paths.CLASSES, classes_record(names, rows, "synthetic-lt", counts, "train split", (100, 20)))
    write_classes(paths.CLASSES, classes_record(names, rows, "folder"))   # the train split's counts, (100, 20)
    classes = read_classes(paths.CLASSES); rows = read_manifest(paths.MANIFEST, classes)
    rows = read_manifest(paths.MANIFEST)          # the same, checked against the classes.json beside it

Kept apart from the dataset builders (pipeline/data/datasets.py) so the stages that only read these files do not
depend on the dataset code. The split names and the one place where classes get their many/medium/few group live
here, beside classes.json: `prepare` computes the groups once (thresholds `dataset.many_above` and
`dataset.few_below`), and metrics, routing summaries and plots read them from classes.json.

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
REPREPARE = "rerun `mdpr prepare`, or `dvc repro` (DVC sees the damaged output and restores it from its cache)"
"""How to recover a damaged classes.json or manifest.csv."""
STANDARD_THRESHOLDS = (100, 20)
"""(many_above, few_below) of the standard long-tail protocol (Liu et al. 2019)."""
CLASSES_FIELDS = ("names", "train_counts", "groups", "group_thresholds", "class_hash", "splits", "manifest")
"""Fields every classes.json holds (written by classes_record)."""


def group_of(count: int, many_above: int, few_below: int) -> str:
    """many (more than `many_above` training images), few (fewer than `few_below`) or medium (the rest).

    The standard protocol (Liu et al. 2019) is many_above 100, few_below 20: the defaults of the dataset params.
    """
    return "many" if count > many_above else ("few" if count < few_below else "medium")


def groups_of(counts: list[int], many_above: int, few_below: int) -> list[str]:
    """The group of every class."""
    return [group_of(int(n), many_above, few_below) for n in counts]


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


def classes_record(names: list[str], rows: list[tuple[str, str, int]], dataset_name: str,
                   counts: list[int] | None = None, counts_source: str = "train split",
                   thresholds: tuple[int, int] = STANDARD_THRESHOLDS, extra: dict | None = None) -> dict:
    """The content of classes.json: names, the train counts in use and where they come from, their groups, the
    class-list hash, the rows per split, the row count and sha256 of the manifest written from the same rows (plus
    `extra` fields, e.g. where imported class features come from).

    `counts` drive the groups, the logit-adjustment prior and the plots; they are the train split's own counts
    unless a class-count file or an imported features file gave the real frequencies (`counts_source` says which);
    None: the train split's counts. `prepare` passes the dataset params' thresholds (many_above, few_below).
    """
    counts = train_counts(rows, len(names)) if counts is None else counts
    many_above, few_below = thresholds
    return {"dataset": dataset_name, "names": list(names), "train_counts": [int(n) for n in counts],
            "train_counts_source": counts_source, "groups": groups_of(counts, many_above, few_below),
            "group_thresholds": {"many_above": many_above, "few_below": few_below},
            "class_hash": class_hash(names), "splits": {s: sum(1 for r in rows if r[0] == s) for s in SPLITS},
            "manifest": {"rows": len(rows), "sha256": hashlib.sha256(manifest_text(rows).encode()).hexdigest()},
            **(extra or {})}


def write_classes(path: Path, record: dict) -> dict:
    """classes.json (a `classes_record`), written atomically; returns it."""
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
