"""The numbers behind the plots, by hand; and the PNG figures checked by the data they draw, not by their bytes."""
import math

import matplotlib
import numpy as np
import pytest

from pipeline.evaluation import plot_data, plots
from pipeline.evaluation.report import LABELS

METHODS = ("base", "mdpr")
COUNTS = [200, 150, 101, 100, 60, 20, 19, 5, 5, 1]
GROUPS = ["many"] * 3 + ["medium"] * 3 + ["few"] * 4
BASE = [1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0, math.nan]   # the rarest class has no test image
MDPR = [1.0, 1.0, 0.8, 0.6, 0.6, 0.5, 0.4, 0.3, 0.2, 0.4]


def per_class_rows():
    return [{"class_index": c, "class": f"c{c}", "train_count": n, "group": g, "base": b, "mdpr": m}
            for c, (n, g, b, m) in enumerate(zip(COUNTS, GROUPS, BASE, MDPR))]


def test_frequency_bins_by_hand():
    # 3 log-spaced bins over [1, 201): edges 1, 5.86, 34.3, 201; split at the thresholds 20 and 101
    bins = plot_data.frequency_bins(per_class_rows(), METHODS, few_below=20, many_above=100, max_bins=3)
    expected = [  # (members, group, base mean, mdpr mean)
        ([5, 5, 1], "few", (0.1 + 0.0) / 2, (0.3 + 0.2 + 0.4) / 3),
        ([19], "few", 0.2, 0.4),
        ([20], "medium", 0.3, 0.5),
        ([100, 60], "medium", (0.5 + 0.4) / 2, 0.6),
        ([200, 150, 101], "many", 0.8, (1.0 + 1.0 + 0.8) / 3),
    ]
    assert len(bins) == len(expected)
    for got, (members, group, base, mdpr) in zip(bins, expected):
        assert (got["count_min"], got["count_max"], got["classes"], got["group"]) == (min(members), max(members),
                                                                                    len(members), group)
        assert got["train_count"] == pytest.approx(math.prod(members) ** (1 / len(members)), abs=1e-3)
        assert (got["base"], got["mdpr"]) == pytest.approx((base, mdpr), abs=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_bins_hold_every_class_once_and_never_straddle_a_group_threshold(seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 1300, size=1000).tolist()
    rows = [{"train_count": n, "group": "many" if n > 100 else ("few" if n < 20 else "medium"), "mdpr": 0.5}
            for n in counts]
    bins = plot_data.frequency_bins(rows, ("mdpr",), 20, 100)
    assert sum(b["classes"] for b in bins) == 1000 and len(bins) <= 12
    for b in bins:
        members = [r for r in rows if b["count_min"] <= r["train_count"] <= b["count_max"]]
        assert len(members) == b["classes"] and {r["group"] for r in members} == {b["group"]}
    assert [b["train_count"] for b in bins] == sorted(b["train_count"] for b in bins)


def test_rows_for_bars_routing_and_confusion():
    metrics = {"base": {"top1": 0.4, "mean_class": 0.35, "many": 0.9, "few": 0.1},
               "mdpr": {"top1": 0.5, "mean_class": 0.45, "many": 0.8, "few": 0.3}}
    assert plot_data.group_accuracy_rows(metrics, METHODS) == [
        {"group": "all", "method": "base", "accuracy": 0.35}, {"group": "all", "method": "mdpr", "accuracy": 0.45},
        {"group": "many", "method": "base", "accuracy": 0.9}, {"group": "many", "method": "mdpr", "accuracy": 0.8},
        {"group": "few", "method": "base", "accuracy": 0.1}, {"group": "few", "method": "mdpr", "accuracy": 0.3}]
    assert plot_data.routing_rows({"many": {"context": 0.3, "differential": 0.7}}) == [
        {"group": "many", "dimension": "context", "weight": 0.3},
        {"group": "many", "dimension": "differential", "weight": 0.7}]
    classes = {"names": ["cat", "dog", "owl"], "groups": ["many", "few", "few"]}
    assert plot_data.prediction_rows(["a.png", "b.png"], np.array([0, 2]), np.array([1, 2]), classes) == [
        {"id": "a.png", "actual": "cat", "predicted": "dog", "actual_group": "many", "predicted_group": "few"},
        {"id": "b.png", "actual": "owl", "predicted": "owl", "actual_group": "few", "predicted_group": "few"}]


def test_class_routing_sums_slots_and_averages_each_class_images():
    routing = np.array([[0.5, 0.2, 0.3], [0.1, 0.6, 0.3], [0.2, 0.2, 0.6]])  # (N, V) true-class weights
    names, matrix = plot_data.class_routing(routing, np.array([0, 0, 2]), ["context", "differential", "context"], 4)
    assert names == ["context", "differential"]
    np.testing.assert_allclose(matrix[0], [(0.8 + 0.4) / 2, (0.2 + 0.6) / 2])
    np.testing.assert_allclose(matrix[2], [0.8, 0.2])
    assert np.isnan(matrix[1]).all() and np.isnan(matrix[3]).all()     # no test image


def test_extreme_classes_are_the_head_then_the_tail():
    assert plot_data.extreme_classes([5, 50, 500, 5, 60, 7], k=2) == [2, 4, 0, 3]     # ties: lower index first
    assert plot_data.extreme_classes([3, 2, 1], k=5) == [0, 1, 2]       # fewer classes than 2k: each once


def _outside(figure, axis) -> bool:
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    return not axis.get_legend().get_window_extent(renderer).overlaps(axis.get_window_extent(renderer))


def test_the_frequency_figure_draws_one_line_per_method_through_the_bins():
    bins = plot_data.frequency_bins(per_class_rows(), METHODS, 20, 100, max_bins=3)
    figure = plots.draw_accuracy_vs_frequency(bins, METHODS, 20, 100)
    axis = figure.axes[0]
    assert [line.get_label() for line in axis.get_lines()] == [LABELS[m] for m in METHODS]
    for line, method in zip(axis.get_lines(), METHODS):
        np.testing.assert_allclose(line.get_xdata(), [b["train_count"] for b in bins])
        np.testing.assert_allclose(line.get_ydata(), [b[method] for b in bins])
    assert axis.get_xscale() == "log" and _outside(figure, axis)
    matplotlib.pyplot.close(figure)


def test_the_group_figure_draws_each_method_bar_per_group():
    rows = plot_data.group_accuracy_rows({"base": {"mean_class": 0.35, "many": 0.9, "few": 0.1},
                                          "mdpr": {"mean_class": 0.45, "many": 0.8, "few": 0.3}}, METHODS)
    figure = plots.draw_accuracy_by_group(rows, {"all": 10, "many": 3, "few": 4}, 20, 100)
    axis = figure.axes[0]
    heights = [[bar.get_height() for bar in container] for container in axis.containers]
    assert heights == [[0.35, 0.9, 0.1], [0.45, 0.8, 0.3]]
    assert [t.get_text().split("\n")[0] for t in axis.get_xticklabels()] == ["all", "many", "few"]
    assert _outside(figure, axis)
    matplotlib.pyplot.close(figure)


def test_the_routing_figure_shows_the_group_and_class_matrices():
    weights = {"many": {"context": 0.3, "differential": 0.7}, "few": {"context": 0.55, "differential": 0.45}}
    classes = np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    figure = plots.draw_routing_heatmap(weights, ["a", "b", "c"], ["context", "differential"], classes)
    top, bottom = figure.axes[:2]
    np.testing.assert_allclose(top.images[0].get_array(), [[0.3, 0.7], [0.55, 0.45]])
    np.testing.assert_allclose(bottom.images[0].get_array(), classes)
    assert [t.get_text() for t in bottom.get_yticklabels()] == ["a", "b", "c"]
    assert top.images[0].norm.vcenter == 0.5                         # colours centred on the uniform weight 1/D
    matplotlib.pyplot.close(figure)


def test_routing_cells_get_the_decimals_that_tell_them_apart():
    weights = {"many": {"context": 0.5003, "differential": 0.4997}}          # barely off uniform (1/2)
    figure = plots.draw_routing_heatmap(weights, ["a"], ["context", "differential"], np.array([[0.5001, 0.4999]]))
    top, bottom = figure.axes[:2]
    assert [t.get_text() for t in top.texts] == ["0.5003", "0.4997"]
    assert [t.get_text() for t in bottom.texts] == ["0.5001", "0.4999"]
    matplotlib.pyplot.close(figure)
