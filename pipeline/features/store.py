"""HDF5 feature caches: images.h5, classes.h5, library.h5.

    write_h5("artifacts/features/images.h5", {"train": {"features": ..., "labels": ..., "ids": ...}}, attrs)
    groups, attrs = read_h5("artifacts/features/images.h5", expect={"model": "ViT-B-16", "class_hash": ...})

Layouts (all features L2-normalised; root attributes: schema version, encoder model / pretrained tag or checkpoint
hash / precision / image size / normalisation, dataset, number of classes, class-list hash):
- images.h5: per split group (train, val when present, test) `features` (N, d) float32 or float16, `labels` (N,)
  int64, `ids` (N,) strings, optional `views` (N, A, d);
- classes.h5: `features` (C, d) class-name prompt embeddings, `names` (C,);
- library.h5: `features` (C, V, d), `mask` (C, V) bool, `prior` (C, V) = cosine of each description with its
  class-name embedding, `dimensions` (V,); attribute `library_sha256` of the library.jsonl it was made from.

Files are written with default h5py settings, no compression, sorted keys and no timestamps, to a temporary path
then `os.replace`d: rewriting the same arrays gives the same bytes, and no half-written file is ever at the output.
Every read checks the metadata attributes against what the caller expects, the arrays for NaN/inf, and turns a
truncated or foreign file into one clear line.
"""
from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np

from pipeline.core import paths
from pipeline.core.atomic import atomic_path
from pipeline.core.errors import UserError

SCHEMA_VERSION = 1
REBUILD_HINT = {"images.h5": "mdpr embed-images", "classes.h5": "mdpr embed-classes",
                "library.h5": "mdpr embed-library"}


def write_h5(path: str | Path, groups: dict[str, dict[str, np.ndarray]], attrs: dict) -> None:
    """Atomically write `{group: {name: array}}` plus root attributes; '' as group name means the root."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            write_attrs(handle, attrs)
            for group_name in sorted(groups):
                group = handle.require_group(group_name) if group_name else handle
                for name in sorted(groups[group_name]):
                    _write_array(group, name, groups[group_name][name])


def write_attrs(handle: h5py.File, attrs: dict) -> None:
    """The root attributes: the schema version and `attrs`, in sorted order (the same bytes for the same values)."""
    for key, value in sorted({"schema_version": SCHEMA_VERSION, **attrs}.items()):
        handle.attrs[key] = value


def _write_array(group: h5py.Group, name: str, array) -> None:
    array = np.asarray(array)
    if array.dtype.kind in ("U", "O"):
        group.create_dataset(name, data=np.array(array, dtype=object), dtype=h5py.string_dtype())
    else:
        group.create_dataset(name, data=array)


def read_h5(path: str | Path, expect: dict | None = None,
            only: tuple[str, ...] | None = None) -> tuple[dict[str, dict[str, np.ndarray]], dict]:
    """All groups as numpy arrays (strings decoded) and the root attributes, after the checks above; `only`: read
    just these groups (the others are listed with no arrays, so a caller still sees which splits the file has)."""
    path = Path(path)
    hint = REBUILD_HINT.get(path.name, "the stage that writes it")
    if not path.is_file():
        raise UserError(f"{paths.located(path)} not found; run `{hint}` (or `dvc repro`) first.")
    try:
        with h5py.File(path, "r") as handle:
            attrs = {k: _plain(v) for k, v in handle.attrs.items()}
            check_attrs(path, attrs, expect or {})
            groups = {"": {}}
            for name, item in handle.items():
                if isinstance(item, h5py.Group):
                    wanted = only is None or name in only
                    groups[name] = {k: _read_array(v) for k, v in item.items()} if wanted else {}
                else:
                    groups[""][name] = _read_array(item)
    except (OSError, KeyError, ValueError) as err:
        raise UserError(f"{path} is truncated or not a valid feature cache ({str(err)[:120]}); delete it and "
                        f"rerun `{hint}`.") from None
    for group_name, arrays in groups.items():
        for name, array in arrays.items():
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                where = f"{group_name}/{name}" if group_name else name
                raise UserError(f"{path}: {where} holds NaN or infinite values; the encoder diverged or the file is "
                                f"corrupt; rerun `{hint}` (with clip.precision: fp32 if it used fp16).")
    return groups, attrs


def _read_array(dataset: h5py.Dataset) -> np.ndarray:
    if h5py.check_string_dtype(dataset.dtype):
        return np.array(dataset.asstr()[()], dtype=object)
    return dataset[()]


def _plain(value):
    """h5py attribute values as plain Python types."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def check_attrs(path: Path, attrs: dict, expect: dict) -> None:
    """A cache made for another model, dataset or class list is a clear error naming the first difference."""
    if attrs.get("schema_version") != SCHEMA_VERSION:
        raise UserError(f"{path}: schema version {attrs.get('schema_version')} is not {SCHEMA_VERSION}; delete it and "
                        f"rerun `{REBUILD_HINT.get(path.name, 'dvc repro')}`.")
    for key, wanted in expect.items():
        if attrs.get(key) != wanted:
            raise UserError(f"{path} was made with {as_param(key, attrs.get(key))} but the current inputs need "
                            f"{as_param(key, wanted)}; rerun `{REBUILD_HINT.get(path.name, 'dvc repro')}` (or "
                            f"`dvc repro`).")


def as_param(key: str, value) -> str:
    """A recorded attribute as the params say it: the stored encoder id 'none(seed=1)' reads `pretrained: none,
    clip.seed: 1`; a checkpoint's 'sha256:...' reads as a checkpoint with that hash."""
    text = str(value)
    if key == "pretrained":
        random_init = re.fullmatch(r"none\(seed=(-?\d+)\)", text)
        if random_init:
            return f"pretrained: none, clip.seed: {random_init.group(1)}"
        if text.startswith("sha256:"):
            return f"pretrained: a checkpoint file with {text[:23]}..."
    return f"{key}: {text}"


def read_attrs(path: str | Path) -> dict:
    """Only the root attributes (cheap; no array is read)."""
    try:
        with h5py.File(path, "r") as handle:
            return {k: _plain(v) for k, v in handle.attrs.items()}
    except OSError as err:
        raise UserError(f"{path} is missing, truncated or not HDF5 ({str(err)[:80]}); rerun "
                        f"`{REBUILD_HINT.get(Path(path).name, 'dvc repro')}`.") from None
