"""iNaturalist 2018 (8,142 species) from its official COCO-style annotation files under dataset.root.

    rows, names, taxonomy, official_counts, notes = inat2018_rows(Path("data/inat2018"), val_per_class=2, seed=0)

Files (the dataset's own release, github.com/visipedia/inat_comp, 2018): `train2018.json` and `val2018.json`, each
{"images": [{"id", "file_name", ...}], "annotations": [{"image_id", "category_id", ...}], "categories": [...]},
with the images at `file_name` relative to dataset.root (`train_val2018/Plantae/...jpg`). The categories in the
competition files were obfuscated; the un-obfuscated list (`name` = the species, and `kingdom`, `phylum`, `class`,
`order`, `family`, `genus`) was released afterwards as `categories.json`: when that file lies under dataset.root it
replaces the files' own list, and a category list without species names is refused.

What the real files give: 8,142 classes, 437,513 train images, 24,426 val images (imbalance ratio ~500).

Splits: val2018 is the test split, as in the long-tail literature (LIFT, Decoder, BALLAD). The val split is drawn
from train2018: a class with at least VAL_SHARE x dataset.val_per_class training images gives dataset.val_per_class
of them (chosen by a permutation seeded with dataset.seed), so val is balanced over the classes that give one and
never takes more than a fifth of any class; a smaller class keeps all its images and has no val image (prepare
names these classes). Labels follow the category ids in ascending order. The counts that define many / medium /
few and the logit-adjustment prior are the official train2018 counts (before the val split is drawn), so the
groups are the literature's.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.core.errors import UserError

FILES = {"train": "train2018.json", "test": "val2018.json"}
"""Manifest split -> official annotation file (val2018 is the test split)."""
CATEGORIES_FILE = "categories.json"
"""The un-obfuscated category list released after the 2018 competition (optional, under dataset.root)."""
TAXONOMY = ("kingdom", "phylum", "class", "order", "family", "genus")
"""Category fields joined (with ' > ') into each class's taxonomy, which the library prompts show the LLM."""
VAL_SHARE = 5
"""A class gives dataset.val_per_class images to val only if it has at least this many times as many."""
VAL_STREAM = 2
"""Second seed word of the generator that draws iNat's val split (apart from other uses of dataset.seed)."""
HELP = ("download train2018.json, val2018.json (and categories.json, the un-obfuscated names) and the images from "
        "github.com/visipedia/inat_comp (2018) and set dataset.root to the folder holding them")


def inat2018_rows(root: Path, val_per_class: int, seed: int):
    """(rows in manifest order, class names, taxonomy per class, official train counts, notes for prepare's summary:
    the classes without a val image, named)."""
    splits = {split: _read(root / name) for split, name in FILES.items()}
    categories = _categories(root, splits["train"])
    ids = sorted(categories)
    label_of = {category_id: label for label, category_id in enumerate(ids)}
    pairs = {split: _pairs(root / FILES[split], content, label_of) for split, content in splits.items()}
    missing = [path for split in pairs for path, _ in pairs[split] if not (root / path).is_file()]
    if missing:
        raise UserError(f"dataset inat2018: {len(missing)} image(s) named in the annotation files are missing under "
                        f"{root} (first: {missing[0]}); extract the images there ({HELP}).")
    counts = np.bincount([label for _, label in pairs["train"]], minlength=len(ids))
    train, val = _draw_val(pairs["train"], counts, val_per_class, seed)
    rows = ([("train", path, label) for path, label in train] + [("val", path, label) for path, label in val]
            + [("test", path, label) for path, label in pairs["test"]])
    names = [str(categories[i]["name"]).strip() for i in ids]
    taxonomy = [" > ".join(str(categories[i][key]).strip() for key in TAXONOMY) for i in ids]
    no_val = [names[c] for c, n in enumerate(counts) if 0 < n < VAL_SHARE * val_per_class]
    shown = ", ".join(no_val[:10]) + (f" and {len(no_val) - 10} more" if len(no_val) > 10 else "")
    notes = [f"{len(no_val)} class(es) too small to give {val_per_class} val image(s): {shown}"] * bool(no_val)
    return rows, names, taxonomy, counts.tolist(), notes


def _read(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"dataset inat2018: {path} not found; {HELP}.")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise UserError(f"dataset inat2018: {path} is not valid JSON ({err}); download it again.") from None
    if not isinstance(content, dict) or not all(isinstance(content.get(k), list) for k in ("images", "annotations")):
        raise UserError(f"dataset inat2018: {path} lacks the `images` and `annotations` lists of the official "
                        "COCO-style format.")
    return content


def _categories(root: Path, train: dict) -> dict[int, dict]:
    """Category id -> category record, from categories.json when present, else from train2018.json."""
    source = root / CATEGORIES_FILE
    listed = json.loads(source.read_text(encoding="utf-8")) if source.is_file() else train.get("categories", [])
    where = source if source.is_file() else root / FILES["train"]
    fields = ("id", "name", *TAXONOMY)
    bad = next((c for c in listed if not isinstance(c, dict) or any(k not in c for k in fields)), None)
    if not listed or bad is not None:
        raise UserError(f"dataset inat2018: the categories in {where} lack species names and taxonomy (fields "
                        f"{', '.join(fields)}; the 2018 competition files were obfuscated): put the un-obfuscated "
                        f"{CATEGORIES_FILE} (released with the dataset) under {root}.")
    return {int(c["id"]): c for c in listed}


def _pairs(path: Path, content: dict, label_of: dict[int, int]) -> list[tuple[str, int]]:
    """(file_name, label) of every annotated image, in the file's image order."""
    files = {image["id"]: image["file_name"] for image in content["images"]}
    labels = {}
    for note in content["annotations"]:
        if note["category_id"] not in label_of:
            raise UserError(f"dataset inat2018: {path} annotates image {note['image_id']} with category "
                            f"{note['category_id']}, which is not in the category list.")
        labels[note["image_id"]] = label_of[note["category_id"]]
    unlabelled = [image_id for image_id in files if image_id not in labels]
    if unlabelled:
        raise UserError(f"dataset inat2018: {path} has {len(unlabelled)} image(s) with no annotation (first id "
                        f"{unlabelled[0]}); use the official file.")
    return [(files[image_id], labels[image_id]) for image_id in files]


def _draw_val(train: list[tuple[str, int]], counts: np.ndarray, val_per_class: int, seed: int):
    """(train pairs, val pairs): val_per_class of each class with at least VAL_SHARE x as many images."""
    rng = np.random.default_rng([seed, VAL_STREAM])
    members: list[list[int]] = [[] for _ in counts]
    for k, (_, label) in enumerate(train):
        members[label].append(k)
    moved = {k for label, rows in enumerate(members) if counts[label] >= VAL_SHARE * val_per_class
             for k in rng.permutation(rows)[:val_per_class].tolist()}
    return ([pair for k, pair in enumerate(train) if k not in moved],
            [pair for k, pair in enumerate(train) if k in moved])
