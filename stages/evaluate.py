"""Evaluate all methods, write metrics, per-class CSV and plots (params: evaluate, clip).

    mdpr evaluate           # DVC stage `evaluate` (runtime: device and batch size)

Scores every method on the test split; writes artifacts/metrics/metrics.json (per method: top1, mean_class, many,
medium, few; absent groups are left out), per_class.csv, routing.json and PNG plots under artifacts/metrics/plots/;
prints the table. A `coop` model's frozen text encoder is rebuilt from the clip params; its class prompts run once.
"""
import pandas as pd

from pipeline.config.data_params import ClipParams, RuntimeParams
from pipeline.config.model_params import EvaluateParams
from pipeline.config.params import load_sections
from pipeline.core import paths
from pipeline.core.atomic import atomic_path, write_json
from pipeline.core.device import resolve_device
from pipeline.evaluation import plots
from pipeline.evaluation.methods import METHODS, per_class_rows, predict_methods
from pipeline.evaluation.report import format_table
from pipeline.evaluation.routing import dimension_weights
from pipeline.features.caches import load_features
from pipeline.model.checkpoint import load_checkpoint, load_trained_model
from pipeline.model.losses import class_log_prior
from pipeline.model.metrics import accuracy_report


def run(params_path: str = "params.yaml") -> None:
    params, clip_params, runtime = load_sections(params_path, EvaluateParams, ClipParams, RuntimeParams)
    feats = load_features()
    device = resolve_device(runtime.device)
    model = load_trained_model(feats, load_checkpoint(paths.CHECKPOINT, feats.hashes), clip_params, device)
    test_feats, labels = feats.scored("test")
    counts = feats.classes["train_counts"]
    preds, routing = predict_methods(model, test_feats, labels, params.fusion_weight, params.posthoc_tau,
                                     class_log_prior(counts), runtime.batch_size, device,
                                     progress=True)
    metrics = {m: {k: round(v, 6) for k, v in accuracy_report(preds[m], labels, counts).items()} for m in METHODS}
    write_json(paths.METRICS, metrics)
    rows = per_class_rows(feats.classes, preds, labels)
    with atomic_path(paths.PER_CLASS) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.6f")
    plots.accuracy_vs_frequency(rows, METHODS, paths.PLOTS / "accuracy_vs_frequency.png")
    weights = dimension_weights(routing, labels, feats.classes["groups"], feats.dimensions)
    write_json(paths.ROUTING, weights)
    plots.routing_by_dimension(weights, paths.PLOTS / "routing_by_dimension.png")
    print(format_table(metrics))
