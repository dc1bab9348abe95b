"""The three feature caches loaded together, checked against each other and against classes.json.

    feats = load_features()     # from the project root: images (per split), class text feats, library (C, V, d)

Train and evaluate read features only through here, so a cache made by another encoder, dataset or class list is
one clear error, and the checkpoint can record which files it was trained on.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.core import paths
from pipeline.core.errors import UserError
from pipeline.core.hashing import file_sha256
from pipeline.data import manifest
from pipeline.features import store


@dataclass
class Features:
    classes: dict                     # classes.json
    splits: dict[str, dict]           # split -> {features (N, d) | views (N, A, d), labels (N,), ids (N,)}
    class_feats: np.ndarray           # (C, d) class-name prompt embeddings
    library_feats: np.ndarray         # (C, V, d)
    library_mask: np.ndarray          # (C, V)
    library_prior: np.ndarray         # (C, V)
    dimensions: list[str]             # (V,)
    library_norms: np.ndarray | None  # (C, V) description norms before L2 normalisation (None: library.h5 has none)
    hashes: dict[str, str]            # file name -> sha256, recorded in the checkpoint
    image_attrs: dict
    space_check: str = ""             # classes.h5's verdict on an import's embedding space (features/space.py)

    def train_inputs(self) -> np.ndarray:
        """Training features (N, d), or (N, 1 + A, d) with the A cached augmented views (one is drawn per epoch)."""
        train = self.splits["train"]
        if "views" not in train:
            return train["features"]
        return np.concatenate([train["features"][:, None], train["views"]], axis=1)

    def scored(self, split: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(features, labels) as evaluation scores a split: its cached test-time views (N, A, d) when present,
        else (N, d); None when the dataset has no such split."""
        if split not in self.splits:
            return None
        group = self.splits[split]
        return group.get("views", group["features"]), group["labels"]


def load_features(with_images: bool = True, splits: tuple[str, ...] | None = None) -> Features:
    """Read and cross-check images.h5, classes.h5 and library.h5 (paths relative to the project root).

    `with_images=False` reads only images.h5's attributes (predict needs the class and library arrays alone);
    `splits`: read only these image splits (evaluate: val and test; iNat's 437,513 train features are 0.9 GB).
    """
    classes = manifest.read_classes(paths.CLASSES)
    expect = {"class_hash": classes["class_hash"]}
    if with_images:
        images, image_attrs = store.read_h5(paths.IMAGES_H5, expect, splits)
    else:
        image_attrs = store.read_attrs(paths.IMAGES_H5)
        store.check_attrs(paths.IMAGES_H5, image_attrs, expect)
        images = {"train": {}, "test": {}}
    same_encoder = {**expect, "model": image_attrs["model"], "pretrained": image_attrs["pretrained"]}
    text, text_attrs = store.read_h5(paths.CLASSES_H5, same_encoder)
    library, _ = store.read_h5(paths.LIBRARY_H5, same_encoder)
    if "train" not in images or "test" not in images:
        raise UserError(f"{paths.IMAGES_H5} lacks a train or test split; rerun `mdpr prepare` and `mdpr embed-images`.")
    groups = {name: group for name, group in images.items() if name and (splits is None or name in splits)}
    hashes = {p.name: file_sha256(p) for p in (paths.IMAGES_H5, paths.CLASSES_H5, paths.LIBRARY_H5)}
    return Features(classes, groups, text[""]["features"], library[""]["features"], library[""]["mask"],
                    library[""]["prior"], list(library[""]["dimensions"]), library[""].get("norms"), hashes,
                    image_attrs, text_attrs.get("space_check", ""))
