"""Data lineage: every file a dataset reads is a DVC dependency, so a change in the data reruns what it feeds.

    path = source_path(params, "features_file")      # refused unless it lies under dataset.root
    path = source_path(params, "train_counts_file", shipped=True)   # ... or under data/splits/

dvc.yaml declares `${dataset.root}` (interpolated from params.yaml) as a dependency of `prepare` and `embed_images`,
next to the shipped `data/classnames` and `data/splits`. DVC hashes those paths itself (its state database keeps
each file's hash by inode, size and mtime, so only new or changed files are read again): adding, changing or deleting
an image under the root, or rewriting a features file in it, reruns `prepare`, `embed_images` and everything below.
The rule that keeps this true: a file a dataset reads besides its root (a train list, a class-count file, an imported
features file) must lie under `dataset.root` or, for split and count files, under `data/splits/`; anything else is
refused here with one line, since DVC would not see it change. Paths are not interpolated one by one because a null
param cannot be a DVC path; `dataset.root` is never null and its default, `data/raw`, is a committed folder.

`SOURCES` says where each dataset's files come from and how they lie under the root (`mdpr preset`'s "Next:" block,
`mdpr check` and prepare's error when they are missing: pipeline/data/inputs.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.config.data_params import DatasetParams
from pipeline.core.errors import UserError
from pipeline.core.paths import SHIPPED

SPLITS_DIRS = (Path("data/splits"), SHIPPED / "data" / "splits")
"""The shipped split and count files (a DVC dependency of prepare), from the project root or the checkout."""


def source_path(params: DatasetParams, key: str, shipped: bool = False) -> Path:
    """dataset.<key> as a Path, refused unless it is dataset.root or lies under it (or under data/splits/ when
    `shipped` is allowed)."""
    value = getattr(params, key)
    allowed = [Path(params.root), *(SPLITS_DIRS if shipped else ())]
    resolved = Path(value).resolve()
    if not any(resolved == a.resolve() or a.resolve() in resolved.parents for a in allowed):
        where = "dataset.root" + (" or data/splits/" if shipped else "")
        raise UserError(f"dataset.{key} = {value} lies outside {where} (dataset.root = {params.root}), so DVC would "
                        f"not see it change; move the file under {where}, or set dataset.root to the folder that "
                        f"holds it.")
    return Path(value)


@dataclass(frozen=True)
class DataSource:
    """Where a dataset's files come from, and how they lie under dataset.root."""

    obtain: str  # what to download, from where
    layout: str  # the paths under dataset.root, as the split files or torchvision expect them


SOURCES = {
    "imagenet-lt": DataSource(
        "ImageNet (ILSVRC2012) train and val images, from image-net.org (sign in; the ILSVRC2012 downloads)",
        "train/<wnid>/<wnid>_<n>.JPEG and val/<wnid>/ILSVRC2012_val_<n>.JPEG (the val images sorted into one folder "
        "per wnid, e.g. train/n01440764/n01440764_762.JPEG)"),
    "places-lt": DataSource(
        "Places365-Standard small images (256x256, easy directory structure: places365standard_easyformat.tar), "
        "from places2.csail.mit.edu",
        "train/<category>/<n>.jpg and val/<category>/Places365_val_<n>.jpg (the archive's places365_standard folder, "
        "e.g. train/airfield/00004851.jpg)"),
    "cifar100-lt": DataSource("the CIFAR-100 python version (cifar-100-python.tar.gz, 161 MB) from "
                              "https://www.cs.toronto.edu/~kriz/cifar.html",
                              "cifar-100-python/ holding train, test and meta"),
    "cifar10-lt": DataSource("the CIFAR-10 python version (cifar-10-python.tar.gz, 163 MB) from "
                             "https://www.cs.toronto.edu/~kriz/cifar.html",
                             "cifar-10-batches-py/ holding data_batch_1..5, test_batch and batches.meta"),
    "folder": DataSource("your own images", "one sub-folder per class (<class>/<image>), and dataset.split_file when "
                         "you set one"),
    "features": DataSource("your precomputed features (.h5 or .npz; README, 'Bring your own features')",
                           "the file dataset.features_file names"),
}
"""Dataset name -> where its files come from (synthetic-lt needs none)."""
