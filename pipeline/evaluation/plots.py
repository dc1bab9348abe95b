"""PNG plots of an evaluation (matplotlib, Agg backend, deterministic bytes for the same numbers).

    accuracy_vs_frequency(per_class_rows, methods, classes["group_thresholds"], Path("plots/accuracy_vs_frequency.png"))
    routing_by_dimension(weights_by_group, Path("artifacts/metrics/plots/routing_by_dimension.png"))
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pipeline.core.atomic import atomic_path  # noqa: E402


def _save(figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    plt.close(figure)


def accuracy_vs_frequency(rows: list[dict], methods: tuple[str, ...], thresholds: dict, path: Path) -> None:
    """Per-class accuracy of each method against the class's training count (log x), classes sorted by count;
    dotted lines at the group thresholds of classes.json (`few_below`, `many_above`)."""
    ordered = sorted(rows, key=lambda r: -r["train_count"])
    counts = [r["train_count"] for r in ordered]
    figure, axis = plt.subplots(figsize=(7, 4))
    for method in methods:
        axis.plot(counts, [r[method] for r in ordered], marker="o", markersize=3, linewidth=1, label=method)
    for threshold in (thresholds["few_below"], thresholds["many_above"]):
        axis.axvline(threshold, color="grey", linestyle=":", linewidth=1)
    axis.set_xscale("log")
    axis.set_xlabel("training images of the class (log scale)")
    axis.set_ylabel("test accuracy")
    axis.set_title("Per-class accuracy against class frequency")
    axis.legend(fontsize=8)
    figure.tight_layout()
    _save(figure, path)


def routing_by_dimension(weights: dict[str, dict[str, float]], path: Path) -> None:
    """Grouped bars: mean routing weight of each description dimension for many / medium / few classes."""
    groups = list(weights)
    dimensions = list(next(iter(weights.values()))) if weights else []
    figure, axis = plt.subplots(figsize=(7, 4))
    width = 0.8 / max(1, len(groups))
    for k, group in enumerate(groups):
        positions = [i + k * width for i in range(len(dimensions))]
        axis.bar(positions, [weights[group][d] for d in dimensions], width=width, label=group)
    axis.set_xticks([i + width * (len(groups) - 1) / 2 for i in range(len(dimensions))])
    axis.set_xticklabels([d.replace("_", "\n") for d in dimensions], fontsize=8)
    axis.set_ylabel("mean routing weight (true class)")
    axis.set_title("Where the router looks, by class frequency")
    axis.legend(fontsize=8, loc="lower center", ncol=len(groups), framealpha=0.9)
    figure.tight_layout()
    _save(figure, path)
