"""What the evaluate stage writes beside metrics.json: per-class and per-image tables, routing, plot data and PNGs.

    write_evaluation_files(metrics, preds, routing, labels, ids, classes, dimensions)     # stages/evaluate.py

Files (test split; paths in pipeline/core/paths.py; dvc.yaml's top-level `plots:` draws the CSVs):
- per_class.csv: one row per class: index, name, train count, group, each method's accuracy;
- predictions.csv: one row per test image: id, true and predicted (MDPR fused) class and their groups;
- routing.json: mean routing weight per dimension, by group;
- plots/accuracy_by_group.csv + .png: each method on all classes and on many / medium / few;
- plots/accuracy_by_frequency.csv + .png: accuracy of each method, classes binned by training count (log);
- plots/routing_by_group.csv, plots/routing.png: routing by group, and for the most and least frequent classes.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from pipeline.core import paths
from pipeline.core.atomic import atomic_path, write_json
from pipeline.evaluation import plot_data, plots
from pipeline.evaluation.methods import METHODS, per_class_rows
from pipeline.evaluation.routing import dimension_weights

PLOT_FILES = ("accuracy_by_group.csv", "accuracy_by_group.png", "accuracy_by_frequency.csv",
              "accuracy_by_frequency.png", "routing_by_group.csv", "routing.png")
"""What artifacts/metrics/plots/ holds after an evaluation."""


def write_csv_table(path, rows: list[dict]) -> None:
    """Rows as CSV (6 decimals), atomically."""
    with atomic_path(path) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.6f")


def write_evaluation_files(metrics: dict, preds: dict[str, np.ndarray], routing: np.ndarray, labels: np.ndarray,
                           ids, classes: dict, dimensions: list[str]) -> None:
    """Every file of the list above, from the test split's metrics, predictions (N,) per method, true-class routing
    (N, V), labels (N,) and image ids (N,)."""
    rows = per_class_rows(classes, preds, labels)
    write_csv_table(paths.PER_CLASS, rows)
    write_csv_table(paths.PREDICTIONS, plot_data.prediction_rows(ids, labels, preds["mdpr"], classes))
    weights = dimension_weights(routing, labels, classes["groups"], dimensions)
    write_json(paths.ROUTING, weights)

    thresholds = classes["group_thresholds"]  # the dataset params' many_above and few_below, from prepare
    few_below, many_above = thresholds["few_below"], thresholds["many_above"]
    bars = plot_data.group_accuracy_rows(metrics, METHODS)
    write_csv_table(paths.PLOTS / "accuracy_by_group.csv", bars)
    classes_per_group = {plot_data.ALL: len(classes["names"]), **Counter(classes["groups"])}
    plots.accuracy_by_group(bars, classes_per_group, few_below, many_above, paths.PLOTS / "accuracy_by_group.png")

    bins = plot_data.frequency_bins(rows, METHODS, few_below, many_above)
    write_csv_table(paths.PLOTS / "accuracy_by_frequency.csv", bins)
    plots.accuracy_vs_frequency(bins, METHODS, few_below, many_above, paths.PLOTS / "accuracy_by_frequency.png")

    write_csv_table(paths.PLOTS / "routing_by_group.csv", plot_data.routing_rows(weights))
    names, matrix = plot_data.class_routing(routing, labels, dimensions, len(classes["names"]))
    shown = plot_data.extreme_classes(classes["train_counts"])
    labels_shown = [f"{classes['names'][c]} ({classes['train_counts'][c]}, {classes['groups'][c]})" for c in shown]
    plots.routing_heatmap(weights, labels_shown, names, matrix[shown], paths.PLOTS / "routing.png")
    for stale in set(paths.PLOTS.iterdir()) - {paths.PLOTS / name for name in PLOT_FILES}:
        stale.unlink()  # a plot an earlier version wrote (DVC empties the folder itself; a run by hand may not)
