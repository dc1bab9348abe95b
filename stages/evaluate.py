"""Stage `evaluate`: every method on the test split, one table.

    mdpr evaluate           # reads params.yaml: evaluate (runtime for device and batch size)

Writes artifacts/metrics/metrics.json (per method: top1, mean_class, many, medium, few; absent groups are left
out), artifacts/metrics/per_class.csv, and PNG plots under artifacts/metrics/plots/; prints the table.
"""
import numpy as np
import pandas as pd
import torch

from pipeline import paths, plots
from pipeline.atomic import atomic_path, write_json
from pipeline.device import resolve_device
from pipeline.evaluation import METHODS, dimension_weights, load_checkpoint, load_trained_model, predict_methods
from pipeline.features import load_features
from pipeline.losses import class_log_prior
from pipeline.metrics import accuracy_report, per_class_accuracy
from pipeline.params import EvaluateParams, RuntimeParams, load_params
from pipeline.report import format_table

PLOTS = paths.METRICS_DIR / "plots"


def run(params_path: str = "params.yaml") -> None:
    params = load_params(params_path, EvaluateParams)
    runtime = load_params(params_path, RuntimeParams)
    feats = load_features()
    checkpoint = load_checkpoint(paths.CHECKPOINT, feats.hashes)
    model = load_trained_model(feats, checkpoint)
    test = feats.splits["test"]
    counts = feats.classes["train_counts"]
    preds, routing = predict_methods(model, test.get("views", test["features"]), test["labels"], params.fusion_weight,
                                     params.posthoc_tau, class_log_prior(counts), runtime.batch_size,
                                     str(resolve_device(runtime.device)))
    metrics = {m: {k: round(v, 6) for k, v in accuracy_report(preds[m], test["labels"], counts).items()}
               for m in METHODS}
    write_json(paths.METRICS, metrics)
    rows = _per_class_rows(feats.classes, preds, test["labels"])
    with atomic_path(paths.PER_CLASS) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.6f")
    plots.accuracy_vs_frequency(rows, METHODS, PLOTS / "accuracy_vs_frequency.png")
    weights = dimension_weights(routing, test["labels"], feats.classes["groups"], feats.dimensions)
    write_json(paths.METRICS_DIR / "routing.json", weights)
    plots.routing_by_dimension(weights, PLOTS / "routing_by_dimension.png")
    print(format_table(metrics))


def _per_class_rows(classes: dict, preds: dict, labels: np.ndarray) -> list[dict]:
    accuracy = {m: per_class_accuracy(torch.as_tensor(p), torch.as_tensor(labels), len(classes["names"])).numpy()
                for m, p in preds.items()}
    return [{"class_index": c, "class": name, "train_count": classes["train_counts"][c], "group": classes["groups"][c],
             **{m: float(accuracy[m][c]) for m in METHODS}} for c, name in enumerate(classes["names"])]
