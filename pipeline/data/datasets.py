"""Datasets: class names and long-tailed (split, id, label) rows for every dataset kind.

    spec = build_dataset(DatasetParams(name="cifar100-lt", root="data/cifar", imbalance_factor=100.0))
    spec.names, spec.rows          # class names; manifest rows in order (split, id, label)

`mdpr prepare` writes the spec as `artifacts/data/manifest.csv` and `classes.json` (pipeline/data/manifest.py);
pipeline/data/images.py reads an id back as an image:

| dataset.name  | images                                 | id                     |
|---------------|----------------------------------------|------------------------|
| synthetic-lt  | artifacts/data/images (written here)   | `train/00012.png`      |
| cifar*-lt     | torchvision arrays under dataset.root  | `train/12` (row index) |
| imagenet-lt, places-lt, folder | files under dataset.root | path relative to root |
| features      | none: features come from dataset.features_file | the file's ids, or `train/12` |

Every kind has a balanced val split that is never test (pipeline/data/splits.py). The train counts in classes.json
are the train split's own, unless `dataset.train_counts_file` (pipeline/data/counts.py) or an imported file's
`train_counts` give the real frequencies. Files read besides the root must lie under it or under data/splits/
(pipeline/data/sources.py), so DVC sees every change.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.config.data_params import DatasetParams
from pipeline.core.errors import UserError
from pipeline.core.paths import SHIPPED
from pipeline.data import manifest, synthetic
from pipeline.data.counts import read_counts_file
from pipeline.data.images import IMAGE_SUFFIXES, cifar_dataset
from pipeline.data.imported import read_features_file, space_sample
from pipeline.data.sources import root_relative_path, source_path
from pipeline.data.splits import carve_val

DATA_DIR = SHIPPED / "data"
IMAGENET_LT_HELP = ("ImageNet_LT_train.txt comes with the ImageNet-LT release (facebookresearch/classifier-balancing, "
                    "'Dataset' section of its README); save it as data/splits/ImageNet_LT_train.txt (or under "
                    "dataset.root) and set dataset.train_list to its path")


@dataclass
class DatasetSpec:
    """Everything `prepare` writes: class names and (split, id, label) rows in manifest order."""

    names: list[str]
    rows: list[tuple[str, str, int]]
    class_features: np.ndarray | None = None   # (C, d) text features brought with imported image features
    frequencies: list[int] | None = None       # (C,) real training frequencies, when a file gives them
    frequencies_source: str = "train split"
    provenance: dict = field(default_factory=dict)  # classes.json fields naming where imported features come from
    space_sample: dict | None = None           # imported image features the space check classifies (no class feats)

    def train_counts(self) -> list[int]:
        """Training images per class in the train split."""
        return manifest.train_counts(self.rows, len(self.names))

    def counts_in_use(self) -> tuple[list[int], str]:
        """The counts that drive groups, prior and plots, and where they come from."""
        if self.frequencies is not None:
            return self.frequencies, self.frequencies_source
        return self.train_counts(), "train split"


def lt_counts(n_max: int, num_classes: int, imbalance_factor: float) -> list[int]:
    """Exponential long-tailed profile n_i = floor(n_max * IF^(-i/(C-1)))."""
    return [math.floor(n_max * imbalance_factor ** (-i / (num_classes - 1))) for i in range(num_classes)]


def build_dataset(params: DatasetParams) -> DatasetSpec:
    """Class names and manifest rows for `params.name`."""
    builders = {"synthetic-lt": _synthetic, "cifar10-lt": _cifar, "cifar100-lt": _cifar,
                "imagenet-lt": _imagenet_lt, "places-lt": _places_lt, "folder": _folder, "features": _features}
    spec = builders[params.name](params)
    check_classes(spec)
    if params.train_counts_file:
        spec.frequencies = read_counts_file(source_path(params, "train_counts_file", shipped=True), spec.names)
        spec.frequencies_source = f"dataset.train_counts_file {params.train_counts_file}"
    return spec


def check_classes(spec: DatasetSpec) -> None:
    """Every class needs at least one training image (else its prior is undefined)."""
    empty = [spec.names[c] for c, n in enumerate(spec.train_counts()) if n == 0]
    if empty:
        raise UserError(f"dataset: {len(empty)} class(es) have no training image ({', '.join(empty[:5])}); "
                        "add images or remove the class.")


def _synthetic(params: DatasetParams) -> DatasetSpec:
    names = synthetic.class_names(params.num_classes)
    counts = lt_counts(params.n_max or 200, params.num_classes, params.imbalance_factor)
    rows = []
    for split, per_class in (("train", counts), ("val", [params.val_per_class] * len(names)),
                             ("test", [params.test_per_class] * len(names))):
        for label, n in enumerate(per_class):
            rows += [(split, f"{split}/{label:02d}_{k:04d}.png", label) for k in range(n)]
    return DatasetSpec(names, rows)


def _cifar(params: DatasetParams) -> DatasetSpec:
    train = cifar_dataset(params, train=True)
    test = cifar_dataset(params, train=False)
    if params.name == "cifar100-lt":
        names = _read_lines(DATA_DIR / "classnames" / "cifar100_classnames_clip.txt")
    else:
        names = [n.replace("_", " ") for n in train.classes]
    n_max = params.n_max or (5000 if params.name == "cifar10-lt" else 500)
    return DatasetSpec(names, cifar_lt_rows(np.asarray(train.targets), np.asarray(test.targets), n_max,
                                            params.imbalance_factor, params.val_per_class, params.seed))


def cifar_lt_rows(train_targets: np.ndarray, test_targets: np.ndarray, n_max: int, imbalance_factor: float,
                  val_per_class: int, seed: int) -> list[tuple[str, str, int]]:
    """Long-tailed train rows, a balanced val split from the training images they leave out, the full test set.

    Each class's training images are shuffled with the seed: train takes the first n_i, val the last
    val_per_class. A class whose n_i would reach into those (the head class: 500 of CIFAR-100's 500) keeps
    len - val_per_class training images; every other class gets the standard long-tailed subset.
    """
    num_classes = int(train_targets.max()) + 1
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label, n in enumerate(lt_counts(n_max, num_classes, imbalance_factor)):
        order = rng.permutation(np.flatnonzero(train_targets == label))
        if len(order) <= val_per_class:
            raise UserError(f"dataset: class {label} has {len(order)} training images, not enough for "
                            f"dataset.val_per_class = {val_per_class} val images and a training set.")
        train += [("train", f"train/{i}", label) for i in sorted(order[:min(n, len(order) - val_per_class)].tolist())]
        val += [("val", f"train/{i}", label) for i in sorted(order[len(order) - val_per_class:].tolist())]
    return train + val + [("test", f"test/{i}", int(t)) for i, t in enumerate(test_targets)]


def _read_split(path: Path) -> list[tuple[str, int]]:
    """`relative/path label` lines of the standard LT split files."""
    if not path.is_file():
        raise UserError(f"split file {path} not found.")
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].isdigit():
                raise UserError(f"split file {path}, line {n}: expected 'relative/path label', got {line!r}.")
            out.append((parts[0], int(parts[1])))
    return out


def _split_rows(splits: dict[str, Path], root: Path) -> list[tuple[str, str, int]]:
    rows = [(split, rel, label) for split, path in splits.items() for rel, label in _read_split(path)]
    missing = [rel for _s, rel, _l in rows if not (root / rel).is_file()]
    if missing:
        raise UserError(f"dataset: {len(missing)} image(s) listed in the split files are missing under {root} "
                        f"(first: {missing[0]}); set dataset.root to the folder the split paths are relative to.")
    return rows


def _imagenet_lt(params: DatasetParams) -> DatasetSpec:
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    train_list = source_path(params, "train_list", shipped=True) if params.train_list else None
    if train_list is None or not train_list.is_file():
        raise UserError(f"dataset imagenet-lt: train list {train_list} not found; {IMAGENET_LT_HELP}.")
    names = list(IMAGENET_CLASSNAMES)  # CLIP's curated names, shipped by open_clip
    splits = {"train": train_list, "val": DATA_DIR / "splits" / "ImageNet_LT_val.txt",
              "test": DATA_DIR / "splits" / "ImageNet_LT_test.txt"}
    return DatasetSpec(names, _split_rows(splits, Path(params.root)))


def _places_lt(params: DatasetParams) -> DatasetSpec:
    names = _read_lines(DATA_DIR / "classnames" / "places365_classnames_clean.txt")
    train_list = source_path(params, "train_list", shipped=True) if params.train_list else None
    splits = {"train": train_list or DATA_DIR / "splits" / "Places_LT_train.txt",
              "val": DATA_DIR / "splits" / "Places_LT_val.txt", "test": DATA_DIR / "splits" / "Places_LT_test.txt"}
    return DatasetSpec(names, _split_rows(splits, Path(params.root)))


def _folder(params: DatasetParams) -> DatasetSpec:
    root = Path(params.root)
    if not root.is_dir():
        raise UserError(f"dataset folder: {root} is not a directory; set dataset.root to a folder with one sub-folder "
                        "per class.")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise UserError(f"dataset folder: {root} has no class sub-folders.")
    files = {d.name: sorted(p.relative_to(root).as_posix() for p in d.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
             for d in class_dirs}
    empty = [name for name, paths in files.items() if not paths]
    if empty:
        raise UserError(f"dataset folder: class folder(s) with no image: {', '.join(empty[:5])} under {root}; "
                        "add images or remove the folder.")
    labels = {d.name: i for i, d in enumerate(class_dirs)}
    names = [d.name.replace("_", " ").strip() for d in class_dirs]
    if params.split_file:
        split_of = _read_folder_split(root_relative_path(params, "split_file"))
        rows = [(split_of.get(path, "train"), path, labels[name]) for name, paths in files.items() for path in paths]
    else:
        rng = np.random.default_rng(params.seed)
        rows = []
        for name, paths in files.items():
            held_out = set(rng.permutation(len(paths))[: max(1, len(paths) // 5)].tolist()) if len(paths) > 1 else set()
            rows += [("test" if k in held_out else "train", p, labels[name]) for k, p in enumerate(paths)]
    order = {split: k for k, split in enumerate(manifest.SPLITS)}
    rows = sorted(rows, key=lambda r: (order[r[0]], r[2], r[1]))
    fix = "add images to that class, or list val images in dataset.split_file"
    return DatasetSpec(names, carve_val(rows, names, params.val_per_class, params.seed, fix))


def _features(params: DatasetParams) -> DatasetSpec:
    """Bring-your-own features: classes and rows come from the user's file (pipeline/data/imported.py)."""
    if not params.features_file:
        raise UserError("dataset.name is features but dataset.features_file is null; set it to your .h5 or .npz.")
    imported = read_features_file(source_path(params, "features_file"))
    rows = [(split, image_id, int(label)) for split in manifest.SPLITS if split in imported.splits
            for image_id, label in zip(imported.splits[split]["ids"], imported.splits[split]["labels"])]
    rows = carve_val(rows, imported.class_names, params.val_per_class, params.seed, "add a val split to the file")
    provenance = {"features_file": {"path": params.features_file, **imported.attrs}}
    sample = None if imported.class_features is not None else space_sample(imported, params.seed)
    return DatasetSpec(imported.class_names, rows, imported.class_features, imported.train_counts,
                       f"train_counts of {params.features_file}", provenance, sample)


def _read_folder_split(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise UserError(f"dataset.split_file {path} not found (a CSV with columns path,split).")
    with open(path, newline="") as handle:
        out = {row["path"]: row["split"] for row in csv.DictReader(handle)}
    bad = sorted({s for s in out.values() if s not in ("train", "val", "test")})
    if bad:
        raise UserError(f"dataset.split_file {path}: split must be train, val or test, got {bad[0]!r}.")
    return out


def _read_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]
