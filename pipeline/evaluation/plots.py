"""PNG plots of an evaluation for people (matplotlib, Agg backend, deterministic bytes for the same numbers).

    accuracy_by_group(group_accuracy_rows(metrics, METHODS), classes_per_group, 20, 100, folder / "by_group.png")
    accuracy_vs_frequency(frequency_bins(rows, METHODS, 20, 100), METHODS, 20, 100, folder / "by_frequency.png")
    routing_heatmap(routing.json weights, class_labels, dimensions, class_matrix, folder / "routing.png")
    figure = draw_accuracy_vs_frequency(...)       # the same without saving: its lines hold the plotted numbers

The numbers come from pipeline/evaluation/plot_data.py, the rows the DVC plot files hold too; this module only
draws them. Legends sit outside the axes, so they never cover data.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from matplotlib.ticker import PercentFormatter, ScalarFormatter  # noqa: E402

from pipeline.core.atomic import atomic_path  # noqa: E402
from pipeline.evaluation.report import LABELS  # noqa: E402

STYLE = {"zero_shot": ("#9e9e9e", "s"), "zero_shot_library": ("#c29a6b", "D"), "base": ("#1f77b4", "o"),
         "semantic": ("#ff7f0e", "^"), "mdpr": ("#2ca02c", "P")}
"""Method -> (colour, marker), the same in every plot."""
GROUP_SHADES = {"few": "#fde0dc", "medium": "#fff4d6", "many": "#e3f2e1"}


def _save(figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, metadata={"Software": None}, bbox_inches="tight")
    plt.close(figure)


def _legend_outside(axis) -> None:
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def group_label(group: str, classes: int, few_below: int, many_above: int) -> str:
    """'many\n> 100 images, 6 classes'."""
    rule = {"all": "mean per class", "many": f"> {many_above} images", "medium": f"{few_below}..{many_above} images",
            "few": f"< {few_below} images"}[group]
    return f"{group}\n{rule}, {classes} class{'es' if classes != 1 else ''}"


def accuracy_by_group(rows: list[dict], classes_per_group: dict[str, int], few_below: int, many_above: int,
                      path: Path) -> None:
    """Grouped bars: each method's accuracy on all classes and on many / medium / few (the standard long-tail
    figure), the value above each bar."""
    _save(draw_accuracy_by_group(rows, classes_per_group, few_below, many_above), path)


def draw_accuracy_by_group(rows: list[dict], classes_per_group: dict[str, int], few_below: int, many_above: int):
    """The figure of accuracy_by_group: one bar container per method, in the order of `rows`."""
    groups = list(dict.fromkeys(r["group"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    value = {(r["group"], r["method"]): r["accuracy"] for r in rows}
    width = 0.8 / len(methods)
    figure, axis = plt.subplots(figsize=(8.5, 4))
    for k, method in enumerate(methods):
        positions = [g + (k - (len(methods) - 1) / 2) * width for g in range(len(groups))]
        heights = [value.get((group, method), np.nan) for group in groups]
        bars = axis.bar(positions, heights, width=width * 0.95, color=STYLE[method][0], label=LABELS[method])
        axis.bar_label(bars, labels=[f"{100 * h:.0f}" if not np.isnan(h) else "" for h in heights], fontsize=6.5,
                       padding=1)
    axis.set_xticks(range(len(groups)))
    axis.set_xticklabels([group_label(g, classes_per_group[g], few_below, many_above) for g in groups], fontsize=8)
    axis.set_ylim(0, 1.08)
    axis.yaxis.set_major_formatter(PercentFormatter(1.0))
    axis.set_ylabel("test accuracy (mean per class)")
    axis.set_title("Accuracy by class frequency group (numbers: %)")
    axis.grid(axis="y", alpha=0.3)
    _legend_outside(axis)
    return figure


def accuracy_vs_frequency(bins: list[dict], methods: tuple[str, ...], few_below: int, many_above: int,
                          path: Path) -> None:
    """Binned accuracy of each method against the training count (log x), the few / medium / many ranges shaded
    and the number of classes of each bin written under it."""
    _save(draw_accuracy_vs_frequency(bins, methods, few_below, many_above), path)


def draw_accuracy_vs_frequency(bins: list[dict], methods: tuple[str, ...], few_below: int, many_above: int):
    """The figure of accuracy_vs_frequency: one line per method, in the order of `methods`."""
    x = np.array([b["train_count"] for b in bins])
    low, high = min(b["count_min"] for b in bins) / 1.25, max(b["count_max"] for b in bins) * 1.25
    figure, axis = plt.subplots(figsize=(8.5, 4))
    spans = {"few": (low, few_below), "medium": (few_below, many_above), "many": (many_above, high)}
    for group, (start, end) in spans.items():
        if end > low and start < high:
            axis.axvspan(max(start, low), min(end, high), color=GROUP_SHADES[group], zorder=0)
            axis.text(np.sqrt(max(start, low) * min(end, high)), 1.03, group, ha="center", va="bottom", fontsize=8,
                      color="#555555")
    for method in methods:
        colour, marker = STYLE[method]
        axis.plot(x, [b[method] for b in bins], color=colour, marker=marker, markersize=5,
                  linewidth=2.4 if method == "mdpr" else 1.2, alpha=0.9, label=LABELS[method],
                  zorder=3 if method == "mdpr" else 2)
    for b in bins:
        axis.text(b["train_count"], -0.07, str(b["classes"]), ha="center", va="top", fontsize=6.5, color="#555555")
    axis.set_xscale("log")
    axis.set_xlim(low, high)
    axis.xaxis.set_major_formatter(ScalarFormatter())
    axis.set_ylim(-0.13, 1.1)
    axis.set_yticks(np.linspace(0, 1, 6))
    axis.yaxis.set_major_formatter(PercentFormatter(1.0))
    axis.set_xlabel("training images of the class (log scale; the small numbers: classes in each bin)")
    axis.set_ylabel("test accuracy (mean per class)")
    axis.set_title("Accuracy against class frequency, classes binned by training count")
    axis.grid(alpha=0.3, zorder=1)
    _legend_outside(axis)
    return figure


def routing_heatmap(weights: dict[str, dict[str, float]], class_labels: list[str], dimensions: list[str],
                    class_matrix: np.ndarray, path: Path) -> None:
    """Mean routing weight per dimension: by group (top) and for the given classes (bottom, rows of class_matrix
    (K, D)); colours centred on the uniform weight 1 / D, so what the router prefers stands out."""
    _save(draw_routing_heatmap(weights, class_labels, dimensions, class_matrix), path)


def draw_routing_heatmap(weights: dict[str, dict[str, float]], class_labels: list[str], dimensions: list[str],
                         class_matrix: np.ndarray):
    """The figure of routing_heatmap: two image axes (groups, classes) and the colour bar."""
    groups = list(weights)
    by_group = np.array([[weights[g][d] for d in dimensions] for g in groups])  # (G, D)
    uniform = 1 / len(dimensions)
    deviation = np.abs(np.concatenate([by_group.ravel(), class_matrix.ravel()]) - uniform)
    spread = max(float(np.nanmax(deviation)), 1e-3)  # the colour scale spans the data (at least +-0.001)
    norm = TwoSlopeNorm(vcenter=uniform, vmin=uniform - spread, vmax=uniform + spread)
    digits = max(3, int(np.ceil(-np.log10(spread))) + 1)  # enough decimals to tell the cells apart
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8.5, 1.6 + 0.42 * (len(groups) + len(class_labels))),
                                         height_ratios=[len(groups), max(len(class_labels), 1)], sharex=True)
    for axis, matrix, labels, title in ((top, by_group, groups, "by group (test images of its classes)"),
                                        (bottom, class_matrix, class_labels, "most and least frequent classes")):
        image = axis.imshow(matrix, cmap="RdBu_r", norm=norm, aspect="auto")
        for (row, col), v in np.ndenumerate(matrix):
            if not np.isnan(v):
                axis.text(col, row, f"{v:.{digits}f}", ha="center", va="center", fontsize=7.5,
                          color="white" if abs(v - uniform) > 0.6 * spread else "black")
        axis.set_yticks(range(len(labels)))
        axis.set_yticklabels(labels, fontsize=8)
        axis.set_title(title, fontsize=9, loc="left")
    bottom.set_xticks(range(len(dimensions)))
    bottom.set_xticklabels([d.replace("_", "\n") for d in dimensions], fontsize=8)
    colorbar = figure.colorbar(image, ax=[top, bottom], fraction=0.04, pad=0.02)
    colorbar.set_label(f"mean routing weight (uniform = 1/{len(dimensions)} = {uniform:.2f})", fontsize=8)
    figure.suptitle("Where the router looks: routing weight of the true class per description dimension",
                    fontsize=10)
    return figure
