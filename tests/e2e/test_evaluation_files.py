"""The files evaluate and train write for people and for DVC's plots, checked against hand computations and the
pure functions that make their rows (tests/unit/evaluation/test_plot_data.py checks those by hand)."""
import csv
import json

import pandas as pd
import pytest
import torch

from pipeline.core import paths
from pipeline.evaluation import plot_data
from pipeline.evaluation.figures import PLOT_FILES
from pipeline.evaluation.methods import METHODS
from pipeline.features import store
from pipeline.model.live_metrics import kept_summary
from tests.helpers.by_hand import evaluate_by_hand


def read_csv(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_predictions_csv_holds_each_test_image_and_its_fused_prediction(trained_world):
    expected = evaluate_by_hand(trained_world)
    classes = json.loads((trained_world / paths.CLASSES).read_text())
    rows = read_csv(trained_world / paths.PREDICTIONS)
    assert [r["id"] for r in rows] == [str(i) for i in expected["ids"]]
    names, groups = classes["names"], classes["groups"]
    assert [r["predicted"] for r in rows] == [names[p] for p in expected["preds"]["mdpr"]]
    assert [r["predicted_group"] for r in rows] == [groups[p] for p in expected["preds"]["mdpr"]]
    images, _ = store.read_h5(trained_world / paths.IMAGES_H5)
    assert [(r["actual"], r["actual_group"]) for r in rows] == [
        (names[c], groups[c]) for c in images["test"]["labels"].tolist()]


def test_plot_files_hold_the_rows_of_the_written_metrics(trained_world):
    plots = trained_world / paths.PLOTS
    assert sorted(p.name for p in plots.iterdir()) == sorted(PLOT_FILES)
    metrics = json.loads((trained_world / paths.METRICS).read_text())
    per_class = pd.read_csv(trained_world / paths.PER_CLASS).to_dict("records")
    bars = pd.read_csv(plots / "accuracy_by_group.csv").to_dict("records")
    assert bars == plot_data.group_accuracy_rows(metrics, METHODS)
    bins = pd.read_csv(plots / "accuracy_by_frequency.csv").to_dict("records")
    classes = json.loads((trained_world / paths.CLASSES).read_text())
    thresholds = classes["group_thresholds"]
    reference = plot_data.frequency_bins(per_class, METHODS, thresholds["few_below"], thresholds["many_above"])
    assert len(bins) == len(reference) and sum(b["classes"] for b in bins) == len(per_class)
    for got, want in zip(bins, reference):
        assert got == pytest.approx(want, abs=1e-6)
    routing = json.loads((trained_world / paths.ROUTING).read_text())
    cells = {(r["group"], r["dimension"]): r["weight"] for r in plot_data.routing_rows(routing)}
    written = pd.read_csv(plots / "routing_by_group.csv").to_dict("records")
    assert {(r["group"], r["dimension"]): r["weight"] for r in written} == pytest.approx(cells, abs=1e-6)
    assert len(written) == len(cells)
    for name in PLOT_FILES:
        if name.endswith(".png"):
            assert (plots / name).read_bytes()[:4] == b"\x89PNG"


def test_live_metrics_json_holds_the_kept_epoch(trained_world):
    checkpoint = torch.load(trained_world / paths.CHECKPOINT, weights_only=True)
    summary = json.loads((trained_world / paths.LIVE_DIR / "metrics.json").read_text())
    assert summary == json.loads(json.dumps(kept_summary(checkpoint["history"], checkpoint["kept"])))
    kept = next(r for r in checkpoint["history"] if r["epoch"] == checkpoint["kept"]["epoch"])
    assert summary["val"]["mean_class"] == kept["val_mean_class"] == checkpoint["kept"]["val_mean_class"]
    assert summary["val"]["top5"] == kept["val_top5"] and summary["epochs"] == checkpoint["history"][-1]["epoch"]
    curves = trained_world / paths.LIVE_DIR / "plots" / "metrics"
    steps = [int(row["step"]) for row in csv.DictReader(open(curves / "val" / "top1.tsv"), delimiter="\t")]
    assert steps == [r["epoch"] for r in checkpoint["history"]]            # x = epoch, 0 = the untrained head
    assert (curves / "loss" / "total.tsv").is_file() and not (curves / "loss.tsv").exists()


def test_posthoc_adjustment_at_the_evaluation_level_matches_the_hand_computation(trained_project, trained_world):
    """evaluate.posthoc_tau 1.5 (training keeps it, evaluate applies it): metrics, per-class rows and routing are the
    hand computation's (which subtracts tau log prior, written out), and the fused prediction moves towards the
    rarer classes against tau 0 (the sign)."""
    from stages import evaluate, train
    from tests.helpers.by_hand import assert_evaluation_matches
    from tests.helpers.worlds import write_params

    write_params(trained_project, {"evaluate": {"posthoc_tau": 1.5}})
    train.run()
    evaluate.run()
    expected = evaluate_by_hand(trained_project)
    assert expected["kept"]["posthoc_tau"] == 1.5
    assert_evaluation_matches(trained_project, expected)
    counts = json.loads((trained_world / paths.CLASSES).read_text())["train_counts"]
    without = evaluate_by_hand(trained_world)["preds"]["mdpr"]
    mean_count = {name: sum(counts[c] for c in preds) / len(preds) for name, preds in
                  (("tau 0", without), ("tau 1.5", expected["preds"]["mdpr"]))}
    assert mean_count["tau 1.5"] < mean_count["tau 0"], mean_count
