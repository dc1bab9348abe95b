"""Data lineage: every file a dataset reads is a DVC dependency, so a change in the data reruns what it feeds.

    path = source_path(params, "features_file")      # refused unless it lies under dataset.root
    path = source_path(params, "train_counts_file", shipped=True)   # ... or under data/splits/
    path = root_relative_path(params, "split_file")  # dataset.root / split_file, refused if it leads out of the root

dvc.yaml declares `${dataset.root}` (interpolated from params.yaml) as a dependency of `prepare` and `embed_images`,
next to the shipped `data/classnames` and `data/splits`. DVC hashes those paths itself (its state database keeps
each file's hash by inode, size and mtime, so only new or changed files are read again): adding, changing or deleting
an image under the root, or rewriting a features file in it, reruns `prepare`, `embed_images` and everything below.
The rule that keeps this true: a file a dataset reads besides its root (a train list, a class-count file, an imported
features file) must lie under `dataset.root` or, for split and count files, under `data/splits/`; anything else is
refused here with one line, since DVC would not see it change. Paths are not interpolated one by one because a null
param cannot be a DVC path; `dataset.root` is never null and its default, `data/raw`, is a committed folder.
"""
from __future__ import annotations

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


def root_relative_path(params: DatasetParams, key: str) -> Path:
    """dataset.<key>, a path relative to dataset.root (dataset.split_file), refused when it leads out of the root."""
    path = Path(params.root) / getattr(params, key)
    if Path(params.root).resolve() not in path.resolve().parents:
        raise UserError(f"dataset.{key} = {getattr(params, key)} leads out of dataset.root = {params.root}, so DVC "
                        f"would not see it change; keep the file under dataset.root (the path is relative to it).")
    return path
