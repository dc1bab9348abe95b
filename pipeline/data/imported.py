"""Bring-your-own CLIP features (`dataset.name: features`): read, validate, and hand them to the pipeline.

    imported = read_features_file(Path("my_feats.h5"))     # or .npz
    imported.splits["train"]["features"]                   # (N, d) float32, L2-normalised

Accepted layouts (d = the CLIP embedding width; N per split; C classes):

HDF5 (.h5/.hdf5)                              NPZ (.npz, saved with numpy.savez, no pickled objects)
  /train/features (N, d), /train/labels (N,)    train_features, train_labels
  /test/features, /test/labels                  test_features, test_labels
  /val/...            (optional)                val_features, val_labels        (optional)
  /train/ids (N,) strings (optional)            train_ids                        (optional)
  /class_names (C,) strings                     class_names (C,) unicode array
  /class_features (C, d) (optional)             class_features                   (optional)
  /train_counts (C,) integers (optional)        train_counts                     (optional)
  attrs model, pretrained (optional)            model, pretrained (0-d strings)  (optional)

Any other key (a typo such as `class_feature`) is refused with the list of known keys. `class_features` are
class-name text embeddings from the same CLIP model (used for zero-shot and the base branch init; embed_classes
checks that clip.model/clip.pretrained agree with them); without them the pipeline encodes the class names with
`clip.model`/`clip.pretrained`, which must then be the model that made the image features (the file's
`model`/`pretrained` attributes are checked when present). `train_counts` are the real training frequencies of the
classes (e.g. ImageNet-LT's when the file holds a few images per class): they drive the groups and the prior. Image
ids must be unique across the file's splits (a val split carved from train keeps the train ids).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from pipeline.core.errors import UserError
from pipeline.data.manifest import SPLITS

ARRAYS = ("features", "labels", "ids")
"""Arrays of one split."""
ROOT_KEYS = ("class_names", "class_features", "train_counts")
"""Arrays for the whole file."""
ATTRS = ("model", "pretrained")
"""HDF5 root attributes naming the CLIP that made the features."""
SPACE_SAMPLE_ROWS = 2000
"""Most image features kept for the zero-shot space check of an import without class features
(pipeline/features/space.py)."""


@dataclass
class ImportedFeatures:
    class_names: list[str]
    splits: dict[str, dict[str, np.ndarray]]   # split -> features (N, d), labels (N,), ids (N,)
    class_features: np.ndarray | None          # (C, d)
    attrs: dict
    train_counts: list[int] | None = None      # (C,) real training frequencies, when the file gives them


def read_features_file(path: Path) -> ImportedFeatures:
    """Load and validate a user features file (clear one-line errors for every problem)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"dataset.features_file {path} not found; point it at your .h5 or .npz features file.")
    raw = _read_h5(path) if path.suffix.lower() in (".h5", ".hdf5") else _read_npz(path)
    names = [str(n) for n in raw.pop("class_names", [])]
    counts = raw.pop("train_counts", None)
    if not names:
        raise UserError(f"{path}: no class_names; add a (C,) string array of class names.")
    class_features = raw.pop("class_features", None)
    attrs = raw.pop("attrs", {})
    splits = {s: _check_split(path, s, raw, len(names)) for s in SPLITS if f"{s}/features" in raw}
    for required in ("train", "test"):
        if required not in splits:
            raise UserError(f"{path}: no {required} split; add {required} features and labels.")
    dims = {s: v["features"].shape[1] for s, v in splits.items()}
    if len(set(dims.values())) != 1:
        raise UserError(f"{path}: feature widths differ between splits ({dims}).")
    if class_features is not None:
        class_features = _normalised(path, "class_features", np.asarray(class_features, np.float32))
        if class_features.shape != (len(names), next(iter(dims.values()))):
            raise UserError(f"{path}: class_features has shape {class_features.shape}, expected "
                            f"({len(names)}, {next(iter(dims.values()))}).")
    ids = [i for group in splits.values() for i in group["ids"]]
    if len(set(ids)) != len(ids):
        raise UserError(f"{path}: image ids repeat across or within splits; give every image a unique id.")
    return ImportedFeatures(names, splits, class_features, attrs, _check_counts(path, counts, len(names)))


def space_sample(imported: ImportedFeatures, seed: int) -> dict[str, np.ndarray]:
    """A seeded sample of at most SPACE_SAMPLE_ROWS image features (n, d) and labels (n,) of the file's val split (its
    train split when it has none), which embed_classes classifies zero-shot to check the text encoder's space."""
    split = "val" if "val" in imported.splits else "train"
    group = imported.splits[split]
    rows = np.arange(len(group["labels"]))
    if len(rows) > SPACE_SAMPLE_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(len(rows), SPACE_SAMPLE_ROWS, replace=False))
    return {"features": group["features"][rows].astype(np.float32), "labels": group["labels"][rows],
            "split": np.array(split)}


def _check_counts(path: Path, counts, num_classes: int) -> list[int] | None:
    if counts is None:
        return None
    counts = np.asarray(counts)
    if counts.shape != (num_classes,) or counts.dtype.kind not in "iu" or (counts < 1).any():
        raise UserError(f"{path}: train_counts must be {num_classes} integers >= 1 (one per class), got shape "
                        f"{counts.shape} of {counts.dtype}.")
    return [int(n) for n in counts]


def _refuse_unknown(path: Path, found: list[str], known: list[str]) -> None:
    """A key the format does not define (a typo would otherwise be ignored) is an error listing the known keys."""
    unknown = [key for key in found if key not in known]
    if unknown:
        raise UserError(f"{path}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(known)}.")


def _check_split(path: Path, split: str, raw: dict, num_classes: int) -> dict[str, np.ndarray]:
    feats = np.asarray(raw[f"{split}/features"], np.float32)
    labels = np.asarray(raw.get(f"{split}/labels", np.zeros(0)))
    if feats.ndim != 2 or len(labels) != len(feats):
        raise UserError(f"{path}: {split} features must be (N, d) with N labels; got {feats.shape} and "
                        f"{len(labels)} labels.")
    if labels.dtype.kind not in "iu" or (len(labels) and (labels.min() < 0 or labels.max() >= num_classes)):
        raise UserError(f"{path}: {split} labels must be integers in 0..{num_classes - 1}.")
    ids = raw.get(f"{split}/ids")
    ids = np.array([str(i) for i in ids] if ids is not None else [f"{split}/{k}" for k in range(len(feats))],
                   dtype=object)
    return {"features": _normalised(path, f"{split} features", feats), "labels": labels.astype(np.int64), "ids": ids}


def _normalised(path: Path, what: str, feats: np.ndarray) -> np.ndarray:
    if not np.isfinite(feats).all():
        raise UserError(f"{path}: {what} hold NaN or infinite values; recompute them.")
    norms = np.linalg.norm(feats, axis=-1, keepdims=True)
    if (norms == 0).any():
        raise UserError(f"{path}: {what} have an all-zero row; recompute them.")
    return feats / norms


def _read_h5(path: Path) -> dict:
    out = {}
    try:
        with h5py.File(path, "r") as handle:
            _refuse_unknown(path, [f"attribute {k}" for k in handle.attrs], [f"attribute {k}" for k in ATTRS])
            _refuse_unknown(path, list(handle), [*ROOT_KEYS, *SPLITS])
            out["attrs"] = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in handle.attrs.items()}
            for key in ROOT_KEYS:
                if key in handle:
                    out[key] = handle[key].asstr()[()] if key == "class_names" else handle[key][()]
            for split in SPLITS:
                if split in handle:
                    _refuse_unknown(path, [f"{split}/{k}" for k in handle[split]], [f"{split}/{k}" for k in ARRAYS])
                    for name in ARRAYS:
                        if name in handle[split]:
                            dataset = handle[split][name]
                            out[f"{split}/{name}"] = dataset.asstr()[()] if name == "ids" else dataset[()]
    except OSError as err:
        raise UserError(f"{path} is not a readable HDF5 file ({str(err)[:80]}).") from None
    return out


def _read_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as npz:
            raw = {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as err:
        raise UserError(f"{path} is not a readable .npz without pickled objects ({str(err)[:80]}).") from None
    _refuse_unknown(path, list(raw), [*ROOT_KEYS, *ATTRS, *(f"{s}_{name}" for s in SPLITS for name in ARRAYS)])
    out = {k: v for k, v in raw.items() if k in ROOT_KEYS}
    for key, value in raw.items():
        split, _, name = key.partition("_")
        if split in SPLITS and name in ARRAYS:
            out[f"{split}/{name}"] = value
    out["attrs"] = {key: str(raw[key]) for key in ATTRS if key in raw}
    return out
