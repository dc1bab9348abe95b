"""The numbers behind every plot of an evaluation, as rows: the DVC plot files and the PNGs draw the same rows.

    bins = frequency_bins(per_class_rows, METHODS, few_below=20, many_above=100)   # accuracy_by_frequency.csv
    bars = group_accuracy_rows(metrics, METHODS)                                   # accuracy_by_group.csv
    cells = routing_rows(dimension_weights(...))                                   # routing_by_group.csv
    rows = prediction_rows(ids, labels, preds["mdpr"], classes)                    # predictions.csv
    matrix = class_routing(true_class_routing, labels, dimensions, num_classes)    # (C, D) for the heatmap
    shown = extreme_classes(classes["train_counts"], k=5)                          # its rows: head and tail

Accuracy by frequency is binned: with hundreds of classes one point per class is noise, and classes sharing a count
would stack. Bins are spaced evenly in log(train count) and split at the group thresholds, so each bin lies in one
group; a bin's accuracy is the mean per-class accuracy of its classes (classes without a test image left out).
"""
from __future__ import annotations

import math

import numpy as np

from pipeline.data.manifest import GROUPS
from pipeline.evaluation.routing import per_dimension

ALL = "all"
"""The group name of the whole class list in the bar chart (its accuracy: mean per-class accuracy)."""


def frequency_bins(rows: list[dict], methods: tuple[str, ...], few_below: int, many_above: int,
                   max_bins: int = 10) -> list[dict]:
    """Per-class rows (per_class.csv) binned by training count: one dict per non-empty bin, in count order, with
    `train_count` (geometric mean of its classes' counts), `count_min`, `count_max`, `classes`, `group`, and the
    mean accuracy of each method."""
    counts = np.array([max(int(r["train_count"]), 1) for r in rows])  # (C,)
    low, high = int(counts.min()), int(counts.max())
    edges = np.geomspace(low, high + 1, max_bins + 1)
    edges = np.union1d(edges, [t for t in (few_below, many_above + 1) if low < t <= high])  # bins never straddle
    index = np.searchsorted(edges, counts, side="right") - 1  # (C,) bin of each class
    bins = []
    for b in np.unique(index):
        members = [r for r, i in zip(rows, index) if i == b]
        accuracy = {m: _mean([r[m] for r in members]) for m in methods}
        if all(math.isnan(a) for a in accuracy.values()):
            continue  # no class of the bin has a test image
        member_counts = counts[index == b]
        bins.append({"train_count": round(float(np.exp(np.log(member_counts).mean())), 3),
                     "count_min": int(member_counts.min()), "count_max": int(member_counts.max()),
                     "classes": len(members), "group": members[0]["group"],
                     **{m: round(a, 6) for m, a in accuracy.items()}})
    return bins


def group_accuracy_rows(metrics: dict, methods: tuple[str, ...]) -> list[dict]:
    """(group, method, accuracy) for `all` (mean per-class accuracy) and each group present, from one split's
    metrics (metrics.json's top level or its `val`)."""
    rows = []
    for group in (ALL, *GROUPS):
        key = "mean_class" if group == ALL else group
        rows += [{"group": group, "method": m, "accuracy": metrics[m][key]} for m in methods if key in metrics[m]]
    return rows


def routing_rows(weights: dict[str, dict[str, float]]) -> list[dict]:
    """(group, dimension, weight) for each cell of routing.json's {group: {dimension: mean routing weight}}."""
    return [{"group": group, "dimension": dim, "weight": weight}
            for group, dims in weights.items() for dim, weight in dims.items()]


def prediction_rows(ids, labels: np.ndarray, predicted: np.ndarray, classes: dict) -> list[dict]:
    """One row per test image: id, true and predicted class name, and their groups (for confusion matrices)."""
    names, groups = classes["names"], classes["groups"]
    return [{"id": str(i), "actual": names[t], "predicted": names[p], "actual_group": groups[t],
             "predicted_group": groups[p]} for i, t, p in zip(ids, labels.tolist(), predicted.tolist())]


def class_routing(routing: np.ndarray, labels: np.ndarray, dimensions: list[str], num_classes: int
                  ) -> tuple[list[str], np.ndarray]:
    """Dimension names (D,) and the mean routing weight per class and dimension (C, D) over each class's test
    images (its own class's weights, slots of a dimension summed); NaN rows for classes without a test image."""
    summed = per_dimension(routing, dimensions)  # {dimension: (N,)}
    matrix = np.full((num_classes, len(summed)), np.nan)
    for c in np.unique(labels):
        matrix[c] = [values[labels == c].mean() for values in summed.values()]
    return list(summed), matrix


def extreme_classes(train_counts: list[int], k: int = 5) -> list[int]:
    """The k most frequent classes, then the k least frequent, in decreasing training count (ties by index), without
    repeats."""
    order = sorted(range(len(train_counts)), key=lambda c: (-train_counts[c], c))
    return order[:k] + [c for c in order[-k:] if c not in order[:k]]


def _mean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan
