"""Long-tailed accuracy metrics (fractions in [0, 1]).

    report = accuracy_report(pred, labels, classes["groups"])   # pred, labels (N,); groups (C,) from classes.json
    report["top1"], report["mean_class"], report.get("few")
    report = with_top5(report, top_k_hits(logits, labels))      # + top5: the true class among the 5 best logits
    routing_entropy(true_class_weights, valid_counts)            # H / log V per image (1 = flat routing)

Groups come from classes.json, where `prepare` computed them once (pipeline/data/manifest.py; standard LT protocol,
Liu et al. 2019: `many` with > 100 training images, `medium` 20..100, `few` < 20, thresholds in the dataset
params). A group's accuracy is the mean of the per-class accuracies of its classes (not the pooled accuracy
of its images); on the usual balanced test sets the two coincide. `mean_class` is the mean per-class accuracy over
all classes. Classes with no evaluation image are left out of every mean; a group with no class that has
evaluation images is absent from the report (never NaN).
"""
from __future__ import annotations

import numpy as np
import torch

from pipeline.data.manifest import GROUPS


def per_class_accuracy(pred, labels, num_classes: int) -> torch.Tensor:
    """Accuracy of each class (C,) float64; NaN for a class with no evaluation image."""
    pred, labels = torch.as_tensor(pred).long(), torch.as_tensor(labels).long()
    total = torch.bincount(labels, minlength=num_classes).double()  # (C,)
    correct = torch.bincount(labels[pred == labels], minlength=num_classes).double()  # (C,)
    return torch.where(total > 0, correct / total.clamp_min(1), torch.full_like(total, float("nan")))


def overall_accuracy(pred, labels, num_classes: int) -> dict[str, float]:
    """top1 and mean_class (the mean of the per-class accuracies of the classes that have evaluation images)."""
    pred, labels = torch.as_tensor(pred).long(), torch.as_tensor(labels).long()
    per_class = per_class_accuracy(pred, labels, num_classes)  # (C,)
    return {"top1": (pred == labels).double().mean().item(), "mean_class": per_class[~per_class.isnan()].mean().item()}


def accuracy_report(pred, labels, groups: list[str]) -> dict[str, float]:
    """top1, mean_class and the many/medium/few group accuracies present in this evaluation; `groups` (C,) names
    each class's group."""
    if not all(group in GROUPS for group in groups):
        raise ValueError(f"groups must name each class's group ({', '.join(GROUPS)}; classes.json 'groups'), "
                         f"got {list(groups)[:3]}...")
    report = overall_accuracy(pred, labels, len(groups))
    per_class = per_class_accuracy(pred, labels, len(groups))  # (C,)
    evaluated = ~per_class.isnan()  # (C,)
    for group in GROUPS:
        members = torch.tensor([g == group for g in groups]) & evaluated  # (C,)
        if members.any():
            report[group] = per_class[members].mean().item()
    return report


def top_k_hits(logits: torch.Tensor, labels, k: int = 5) -> torch.Tensor:
    """(N,) bool: the true class is among the k highest logits (N, C) (k capped at C)."""
    labels = torch.as_tensor(labels, device=logits.device).long()
    top = logits.topk(min(k, logits.shape[-1]), dim=-1).indices  # (N, k)
    return (top == labels[:, None]).any(-1)


def with_top5(report: dict, hits) -> dict:
    """`report` with `top5` (the fraction of `hits`, from top_k_hits) right after `top1`."""
    top5 = torch.as_tensor(hits).double().mean().item()
    return {"top1": report["top1"], "top5": top5, **{key: v for key, v in report.items() if key != "top1"}}


def routing_entropy(weights: np.ndarray, valid_counts: np.ndarray) -> np.ndarray:
    """Normalised entropy H(w) / log(V_c) per row: weights (..., V) (0 on invalid slots), valid_counts (...) >= 2
    valid descriptions of the row's class. 1 = the uniform mean (no routing), 0 = all weight on one description."""
    weights = np.asarray(weights, np.float64)
    logs = np.log(np.where(weights > 0, weights, 1.0))  # 0 log 0 = 0
    return -(weights * logs).sum(-1) / np.log(valid_counts)
