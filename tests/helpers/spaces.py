"""Feature imports whose image features do or do not live in the text encoder's space (the space check's worlds).

    write_import_without_class_features(project, text_seed=1)    # feats.npz + params.yaml; clip.seed 0 is unrelated
    own_class_features(names, seed=0)                            # (C, d) what embed_classes computes for mdpr-tiny

Image features are drawn near the class-name embeddings of mdpr-tiny with clip.seed `text_seed`, as real CLIP image
features lie near their own text tower's class embeddings: with clip.seed = text_seed zero-shot classifies them,
with another seed it is at chance.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.helpers.worlds import write_params

NAMES = ["red circle", "blue square", "green triangle", "yellow star", "purple cross", "teal ring"]


def unit_rows(rng, n: int, d: int = 16) -> np.ndarray:
    rows = rng.normal(size=(n, d)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def own_class_features(names, seed: int = 0) -> np.ndarray:
    """(C, d) class-name embeddings of mdpr-tiny (clip.seed `seed`, simple template), as embed_classes computes them."""
    from pipeline.config.data_params import ClipParams
    from pipeline.features.clip import load_encoder

    return load_encoder(ClipParams(templates="simple", seed=seed), "cpu").encode_class_names(list(names), "simple", 64)


def write_import_without_class_features(project: Path, text_seed: int, clip: dict | None = None) -> None:
    """feats.npz (train 12, val 5, test 5 per class of NAMES; no class_features) and params.yaml in `project`."""
    anchors = own_class_features(NAMES, text_seed)  # (6, d)
    rng = np.random.default_rng(4)
    arrays = {}
    for split, per_class in (("train", 12), ("val", 5), ("test", 5)):
        labels = np.repeat(np.arange(len(NAMES)), per_class)
        arrays |= {f"{split}_features": anchors[labels] + 0.6 * unit_rows(rng, len(labels), 64),
                   f"{split}_labels": labels}
    np.savez(project / "feats.npz", class_names=np.array(NAMES), **arrays)
    write_params(project, {"dataset": {"name": "features", "root": "feats.npz", "features_file": "feats.npz"},
                           "clip": clip or {}})
