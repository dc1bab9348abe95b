"""Validation splits that are never test: every dataset kind has a balanced `val` split.

    rows = carve_val(rows, names, val_per_class=10, seed=0, fix="list val images in dataset.split_file")

| dataset.name            | val split                                                                     |
|-------------------------|-------------------------------------------------------------------------------|
| synthetic-lt            | generated: dataset.val_per_class images per class                             |
| cifar10-lt, cifar100-lt | val_per_class per class from the training images the long-tailed subset leaves |
|                         | out (`cifar_lt_rows` in datasets.py; the head class, which would use all its  |
|                         | images, keeps len - val_per_class: 490 of 500 on CIFAR-100 with 10)           |
| imagenet-lt, places-lt  | the official val split files (20 per class)                                   |
| inat2018                | val_per_class from each class with >= 5 x as many train2018 images (inat.py)  |
| folder, features        | the val images given (split file / the file's val split), else `carve_val`    |

`carve_val` moves the same number of training images of every class to val: v = min(val_per_class, n_min // 2),
n_min the smallest class's training count, chosen by a permutation seeded with dataset.seed. The split stays
balanced and no class loses more than half of its training images (the head class loses v of many; a class at the
tail loses at most half). A class with a single training image leaves no room for a balanced val split: that is
refused with one line saying how to give val images.
"""
from __future__ import annotations

import numpy as np

from pipeline.core.errors import UserError
from pipeline.data.manifest import SPLITS

VAL_STREAM = 1
"""Second seed word of the generator that carves val (apart from other uses of dataset.seed)."""


def carve_val(rows: list[tuple[str, str, int]], names: list[str], val_per_class: int, seed: int,
              fix: str) -> list[tuple[str, str, int]]:
    """`rows` with a balanced val split moved out of train, unless they already hold val rows (then unchanged).

    Rows keep their order within each split; the manifest order of splits (train, val, test) is kept.
    """
    if any(split == "val" for split, _id, _label in rows):
        return rows
    train: list[list[int]] = [[] for _ in names]  # row indices of each class's training images
    for k, (split, _id, label) in enumerate(rows):
        if split == "train":
            train[label].append(k)
    smallest = min((k for k in train if k), key=len, default=[])
    per_class = min(val_per_class, len(smallest) // 2)
    if per_class < 1:
        name = names[rows[smallest[0]][2]] if smallest else "?"
        raise UserError(f"dataset: no val split given and class {name!r} has {len(smallest)} training image(s); a "
                        f"balanced val split takes min(dataset.val_per_class, half the smallest class) training "
                        f"images of every class: {fix}.")
    rng = np.random.default_rng([seed, VAL_STREAM])
    moved = {k for members in train if members for k in rng.permutation(members)[:per_class].tolist()}
    carved = [("val" if k in moved else split, image_id, label) for k, (split, image_id, label) in enumerate(rows)]
    order = {split: k for k, split in enumerate(SPLITS)}
    return sorted(carved, key=lambda row: order[row[0]])
