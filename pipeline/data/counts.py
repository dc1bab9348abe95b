"""Real class frequencies: a class-count file read and matched to the dataset's classes (`dataset.train_counts_file`).

    counts = read_counts_file(Path("data/splits/ImageNet_LT_train_cls_freq.json"), class_names)   # C ints >= 1

Formats (one count per class, every class present, integers >= 1):
- JSON list `[50, 250, 516, ...]`: counts in label order (the ImageNet-LT / Places-LT `*_cls_freq.json` files);
- JSON object `{"tench": 50, "goldfish": 250, ...}`: counts by class name;
- CSV with a header: a `count` column and either `label` (0-based class index) or `class` (class name).

Names match ignoring case, '_' and extra spaces. A dataset whose class names repeat (ImageNet lists 'missile' twice)
needs counts by label: a name-keyed file could not say which class it means.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from pipeline.core.errors import UserError


def read_counts_file(path: Path, names: list[str]) -> list[int]:
    """The (C,) training counts the file gives for `names` (one-line UserError for every problem)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"dataset.train_counts_file {path} not found; point it at a JSON or CSV of class counts.")
    if path.suffix.lower() == ".csv":
        return _from_csv(path, names)
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise UserError(f"dataset.train_counts_file {path} is not valid JSON ({err}).") from None
    if isinstance(content, list):
        return _checked(path, content, len(names))
    if isinstance(content, dict):
        return _by_name(path, content, names)
    raise UserError(f"dataset.train_counts_file {path}: expected a JSON list of counts or an object "
                    "{class name: count}.")


def _from_csv(path: Path, names: list[str]) -> list[int]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        rows = list(reader)
    if "count" not in columns or not ({"label", "class"} & set(columns)):
        raise UserError(f"dataset.train_counts_file {path}: needs a header with a `count` column and a `label` or "
                        f"`class` column; found {', '.join(columns) or 'no header'}.")
    counts = [_integer(path, row["count"]) for row in rows]
    if "label" not in columns:
        return _by_name(path, {row["class"]: n for row, n in zip(rows, counts)}, names, len(rows))
    labels = [_integer(path, row["label"]) for row in rows]
    if sorted(labels) != list(range(len(names))):
        raise UserError(f"dataset.train_counts_file {path}: labels must be 0..{len(names) - 1}, each once.")
    return _checked(path, [n for _, n in sorted(zip(labels, counts))], len(names))


def _by_name(path: Path, by_name: dict, names: list[str], entries: int | None = None) -> list[int]:
    """Counts keyed by class name, in label order."""
    keys = [_key(n) for n in names]
    if len(set(keys)) != len(keys):
        repeated = next(n for n, k in zip(names, keys) if keys.count(k) > 1)
        raise UserError(f"dataset.train_counts_file {path}: the class name {repeated!r} repeats in this dataset, so "
                        "counts must be given by label (a JSON list in label order, or a CSV with a label column).")
    given = {_key(name): count for name, count in by_name.items()}
    if len(given) != (entries or len(by_name)):
        raise UserError(f"dataset.train_counts_file {path}: a class name appears twice.")
    unknown = sorted(set(given) - set(keys))
    missing = [n for n, k in zip(names, keys) if k not in given]
    if unknown or missing:
        raise UserError(f"dataset.train_counts_file {path}: {len(missing)} class(es) missing "
                        f"({', '.join(missing[:5])}) and {len(unknown)} unknown name(s) ({', '.join(unknown[:5])}).")
    return _checked(path, [given[k] for k in keys], len(names))


def _checked(path: Path, counts: list, num_classes: int) -> list[int]:
    """Exactly one count per class, each an integer >= 1 (a class never seen in training has no prior)."""
    if len(counts) != num_classes:
        raise UserError(f"dataset.train_counts_file {path}: {len(counts)} counts for {num_classes} classes.")
    counts = [_integer(path, n) for n in counts]
    if min(counts) < 1:
        raise UserError(f"dataset.train_counts_file {path}: every count must be >= 1 (class {counts.index(0)} has 0).")
    return counts


def _integer(path: Path, value) -> int:
    """A count or a label: a non-negative integer, as a JSON number or CSV text."""
    try:
        number = None if isinstance(value, (bool, float)) else int(str(value).strip())
    except ValueError:
        number = None
    if number is None or number < 0:
        raise UserError(f"dataset.train_counts_file {path}: {value!r} is not a non-negative integer.")
    return number


def _key(name: str) -> str:
    return " ".join(str(name).replace("_", " ").split()).casefold()
