"""Zero-shot CLIP on cached features: predictions and the confusion report.

    report = confusion(train_feats, train_labels, class_feats, names, top_k=3)
"""
from __future__ import annotations

import numpy as np


def zero_shot_logits(image_feats: np.ndarray, class_feats: np.ndarray, scale: float = 100.0) -> np.ndarray:
    """(N, d) x (C, d) -> (N, C) scaled cosine logits (features are L2-normalised)."""
    return scale * image_feats.astype(np.float32) @ class_feats.astype(np.float32).T


def confusion(image_feats: np.ndarray, labels: np.ndarray, class_feats: np.ndarray, names: list[str],
              top_k: int) -> dict:
    """For each class: zero-shot accuracy on its images and its top_k most-confused other classes.

    Ranking: how many of the class's images are predicted as the other class; ties (zeros included) are broken by
    the mean softmax probability the other class receives on those images, so every class has a full ranking.
    """
    num_classes = len(names)
    logits = zero_shot_logits(image_feats, class_feats)  # (N, C)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    preds = logits.argmax(axis=1)
    counts = np.zeros((num_classes, num_classes), np.int64)  # (true, predicted)
    np.add.at(counts, (labels, preds), 1)
    classes = []
    for c in range(num_classes):
        members = labels == c
        mean_prob = probs[members].mean(axis=0) if members.any() else np.zeros(num_classes)
        others = [j for j in range(num_classes) if j != c]
        ranked = sorted(others, key=lambda j: (-counts[c, j], -mean_prob[j], j))[:top_k]
        classes.append({"index": c, "name": names[c], "n_train": int(members.sum()),
                        "zero_shot_train_acc": round(float(counts[c, c] / max(1, members.sum())), 6),
                        "confused_with": [{"index": j, "name": names[j], "count": int(counts[c, j]),
                                           "mean_prob": round(float(mean_prob[j]), 6)} for j in ranked]})
    return {"train_accuracy": round(float((preds == labels).mean()), 6), "top_k": top_k, "classes": classes}
