"""Evaluate all methods on val and test, write metrics, per-class CSV and plots (params: evaluate, clip).

    mdpr evaluate           # DVC stage `evaluate` (runtime: device and batch size)

Uses the epoch, fusion weight and post-hoc tau training kept (chosen on the val split where the params say `auto`;
refused when the evaluate params changed since training). Scores every method on val (when the dataset has one),
then reads the test split once, for the report: artifacts/metrics/metrics.json (test per method and the routing
block, `val` the same, `kept`), and on the test split per_class.csv, predictions.csv, routing.json, and the plot
data and PNGs under artifacts/metrics/plots/ (pipeline/evaluation/figures.py); prints the tables. A `coop` model's
frozen text encoder is rebuilt from the clip params; the class side (its prompts included) is computed once for
both splits.
"""
import torch

from pipeline.config.data_params import ClipParams, RuntimeParams
from pipeline.config.model_params import EvaluateParams
from pipeline.config.params import load_sections
from pipeline.core import paths
from pipeline.core.atomic import write_json
from pipeline.core.device import resolve_device
from pipeline.evaluation.figures import write_evaluation_files
from pipeline.evaluation.protocol import report_metrics, score_split
from pipeline.evaluation.report import format_report
from pipeline.features.caches import load_features
from pipeline.model.checkpoint import kept_fusion, load_checkpoint, load_trained_model


def run(params_path: str = "params.yaml") -> None:
    params, clip_params, runtime = load_sections(params_path, EvaluateParams, ClipParams, RuntimeParams)
    feats = load_features(splits=("val", "test"))  # not the train features (0.9 GB at iNat 2018's size)
    checkpoint = load_checkpoint(paths.CHECKPOINT, feats.hashes)
    fusion_weight, posthoc_tau = kept_fusion(checkpoint, params)
    device = resolve_device(runtime.device)
    model = load_trained_model(feats, checkpoint, clip_params, device).to(device)
    del checkpoint["state_dict"]  # the model holds the weights now (the file's copy: ~115 MB at C = 8,142)
    with torch.inference_mode():
        side = model.class_side(router=False)  # class weights (a coop model's prompts), once; the router's side
                                               # is made per chunk of classes while scoring (flat memory in C)

    def score(split):
        split_feats, labels = feats.scored(split)
        return (*score_split(model, split_feats, labels, feats.classes, fusion_weight, posthoc_tau,
                             runtime.batch_size, device, progress=True, side=side, dimensions=feats.dimensions),
                labels)

    val_metrics = score("val")[0] if feats.scored("val") is not None else None
    test_metrics, preds, routing, labels = score("test")  # the test split, read once, for the report
    metrics = report_metrics(test_metrics, val_metrics, checkpoint["kept"], feats.space_check)
    write_json(paths.METRICS, metrics)
    write_evaluation_files(metrics, preds, routing, labels, feats.splits["test"]["ids"], feats.classes,
                           feats.dimensions)
    print(format_report(metrics))
