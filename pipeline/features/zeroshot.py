"""Zero-shot CLIP on cached, L2-normalised features: the scaled cosine logits of CLIP's own classifier.

    logits = zero_shot_logits(image_feats, class_feats)     # (N, d) x (C, d) -> (N, C); numpy or torch alike

Used by the confusion analysis (pipeline/library/confusion.py) and the evaluation's two zero-shot baselines.
"""
from __future__ import annotations

ZERO_SHOT_SCALE = 100.0
"""CLIP's logit scale (exp of its learned temperature, clamped at 100 in the released models)."""


def zero_shot_logits(image_feats, class_feats):
    """(N, d) x (C, d) -> (N, C) scaled cosine logits (features are L2-normalised; numpy arrays or torch tensors)."""
    return ZERO_SHOT_SCALE * image_feats @ class_feats.T
