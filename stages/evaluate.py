"""Evaluate all methods on val and test, write metrics, per-class CSV and plots (params: evaluate, clip).

    mdpr evaluate           # DVC stage `evaluate` (runtime: device and batch size)

Uses the epoch, fusion weight and post-hoc tau training kept (chosen on the val split where the params say `auto`;
refused when the evaluate params changed since training). Scores every method on val (when the dataset has one),
then reads the test split once, for the report: artifacts/metrics/metrics.json (test per method, `val` per method,
`kept`), per_class.csv, routing.json and PNG plots under artifacts/metrics/plots/ (test split); prints the tables.
A `coop` model's frozen text encoder is rebuilt from the clip params; its class prompts run once per run.
"""
import pandas as pd
import torch

from pipeline.config.data_params import ClipParams, RuntimeParams
from pipeline.config.model_params import EvaluateParams
from pipeline.config.params import load_sections
from pipeline.core import paths
from pipeline.core.atomic import atomic_path, write_json
from pipeline.core.device import resolve_device
from pipeline.evaluation import plots
from pipeline.evaluation.methods import METHODS, per_class_rows
from pipeline.evaluation.protocol import report_metrics, score_split
from pipeline.evaluation.report import format_report
from pipeline.evaluation.routing import dimension_weights
from pipeline.features.caches import load_features
from pipeline.model.checkpoint import kept_fusion, load_checkpoint, load_trained_model


def run(params_path: str = "params.yaml") -> None:
    params, clip_params, runtime = load_sections(params_path, EvaluateParams, ClipParams, RuntimeParams)
    feats = load_features()
    checkpoint = load_checkpoint(paths.CHECKPOINT, feats.hashes)
    fusion_weight, posthoc_tau = kept_fusion(checkpoint, params)
    device = resolve_device(runtime.device)
    model = load_trained_model(feats, checkpoint, clip_params, device).to(device)
    with torch.inference_mode():
        side = model.class_side()  # class weights (a coop model's prompts) and the router's class side, once

    def score(split):
        split_feats, labels = feats.scored(split)
        return (*score_split(model, split_feats, labels, feats.classes, fusion_weight, posthoc_tau,
                             runtime.batch_size, device, progress=True, side=side), labels)

    val_metrics = score("val")[0] if feats.scored("val") is not None else None
    test_metrics, preds, routing, labels = score("test")  # the test split, read once, for the report
    metrics = report_metrics(test_metrics, val_metrics, checkpoint["kept"])
    write_json(paths.METRICS, metrics)
    rows = per_class_rows(feats.classes, preds, labels)
    with atomic_path(paths.PER_CLASS) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.6f")
    plots.accuracy_vs_frequency(rows, METHODS, feats.classes["group_thresholds"],
                                paths.PLOTS / "accuracy_vs_frequency.png")
    weights = dimension_weights(routing, labels, feats.classes["groups"], feats.dimensions)
    write_json(paths.ROUTING, weights)
    plots.routing_by_dimension(weights, paths.PLOTS / "routing_by_dimension.png")
    print(format_report(metrics))
