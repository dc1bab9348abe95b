"""Which classes zero-shot CLIP confuses: confusion.json, written by the confusion stage and read by the library.

    report = confusion(train_feats, train_labels, class_feats, names, top_k=3)      # -> confusion.json
    contrasts = read_contrasts(paths.CONFUSION, names)     # each class's most-confused class (differential prompt)
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.core import paths
from pipeline.core.errors import UserError
from pipeline.features.zeroshot import zero_shot_logits


def confusion(image_feats: np.ndarray, labels: np.ndarray, class_feats: np.ndarray, names: list[str],
              top_k: int) -> dict:
    """For each class: zero-shot accuracy on its images and its top_k most-confused other classes.

    Ranking: how many of the class's images are predicted as the other class; ties (zeros included) are broken by
    the mean softmax probability the other class receives on those images, so every class has a full ranking.
    """
    num_classes = len(names)
    logits = zero_shot_logits(image_feats.astype(np.float32), class_feats.astype(np.float32))  # (N, C)
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


def read_contrasts(path: Path, class_names: list[str]) -> list[str | None]:
    """Each class's most-confused class name from confusion.json (None when it lists none)."""
    if not Path(path).is_file():
        raise UserError(f"{paths.located(path)} not found; run `mdpr confusion` (or `dvc repro`) first.")
    try:
        entries = json.loads(Path(path).read_text(encoding="utf-8")).get("classes") or []
    except (ValueError, AttributeError) as err:
        raise UserError(f"{path} is not a confusion report ({str(err)[:80]}); rerun `mdpr confusion`.") from None
    by_index = {entry.get("index"): entry for entry in entries if isinstance(entry, dict)}
    contrasts = []
    for index, name in enumerate(class_names):
        entry = by_index.get(index)
        if entry is None or entry.get("name") != name:
            raise UserError(f"{path} does not match classes.json at class {index} ({name!r}); rerun `mdpr confusion`.")
        confused = entry.get("confused_with") or []
        contrasts.append(confused[0]["name"] if confused else None)
    return contrasts
