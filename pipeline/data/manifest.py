"""The prepare stage's outputs, read and written: manifest.csv and classes.json.

    write_manifest(paths.MANIFEST, rows); rows = read_manifest(paths.MANIFEST)      # (split, id, label) rows
    write_classes(paths.CLASSES, classes_record(names, rows, "synthetic-lt", counts, "train split", (100, 20)))
    classes = read_classes(paths.CLASSES)

Kept apart from the dataset builders (pipeline/data/datasets.py) so the stages that only read these files do not
depend on the dataset code. The split names and the one place where classes get their many/medium/few group live
here, beside classes.json: `prepare` computes the groups once (thresholds `dataset.many_above` and
`dataset.few_below`), and metrics, routing summaries and plots read them from classes.json.
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


def classes_record(names: list[str], rows: list[tuple[str, str, int]], dataset_name: str, counts: list[int],
                   counts_source: str, thresholds: tuple[int, int], extra: dict | None = None) -> dict:
    """The content of classes.json: names, the train counts in use and where they come from, their groups, the
    class-list hash and the rows per split (plus `extra` fields, e.g. where imported class features come from).

    `counts` drive the groups, the logit-adjustment prior and the plots; they are the train split's own counts
    unless a class-count file or an imported features file gave the real frequencies (`counts_source` says which).
    """
    many_above, few_below = thresholds
    return {"dataset": dataset_name, "names": list(names), "train_counts": [int(n) for n in counts],
            "train_counts_source": counts_source, "groups": groups_of(counts, many_above, few_below),
            "group_thresholds": {"many_above": many_above, "few_below": few_below},
            "class_hash": class_hash(names), "splits": {s: sum(1 for r in rows if r[0] == s) for s in SPLITS},
            **(extra or {})}


def write_classes(path: Path, record: dict) -> dict:
    """classes.json (a `classes_record`), written atomically; returns it."""
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
