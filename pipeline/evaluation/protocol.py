"""The evaluation protocol: every choice was made on val by training; val is reported, test is read once, at the end.

    fusion_weight, posthoc_tau = kept_fusion(checkpoint, evaluate_params)        # pipeline/model/checkpoint.py
    metrics, preds, routing = score_split(model, test_feats, test_labels, classes, fusion_weight, posthoc_tau)
    metrics = report_metrics(test_metrics, val_metrics, checkpoint["kept"])      # metrics.json

metrics.json holds, at the top level, each method's test accuracies (`top1`, `top5`, `mean_class`, `many`, `medium`,
`few`; absent groups left out) and the test split's `routing` block (pipeline/evaluation/routing.py: entropy, top
weight, effective descriptions, per-dimension weights, image dependence), under `val` the same for the val split
(absent when the dataset has none), and under `kept` the epoch and the fusion weight and post-hoc tau in use, each
with where it came from (`val`, `params`, or `last epoch (no val split)`). For imported features, `space_check`
holds the verdict of the embedding-space check (`passed: ...`, or `failed: ...` for a run made under
clip.space_check: warn; pipeline/features/space_verdict.py).
"""
from __future__ import annotations

import numpy as np

from pipeline.evaluation.methods import METHODS, predict_methods
from pipeline.evaluation.routing import routing_summary
from pipeline.features.space_verdict import NOT_CHECKED
from pipeline.model.losses import class_log_prior
from pipeline.model.mdpr import HeadSide, MDPRModel
from pipeline.model.metrics import accuracy_report, with_top5


def score_split(model: MDPRModel, feats: np.ndarray, labels: np.ndarray, classes: dict, fusion_weight: float,
                posthoc_tau: float, batch_size: int = 512, device="cpu", progress: bool = False,
                side: HeadSide | None = None, dimensions: list[str] | None = None) -> tuple[dict, dict, np.ndarray]:
    """Accuracy report per method (top1, top5, mean_class, groups; rounded to 1e-6) and, given the library's
    `dimensions` (V,), the `routing` block; predictions per method (N,) and true-class routing (N, V); `classes`
    (classes.json) gives the train counts of the logit-adjustment prior and the groups; `progress`: a bar on stderr
    when scoring takes more than a few seconds; `side`: model.class_side() made once for every split scored with the
    same weights."""
    preds, routing, top5 = predict_methods(model, feats, labels, fusion_weight, posthoc_tau,
                                           class_log_prior(classes["train_counts"]), batch_size, device, progress,
                                           side)
    metrics = {m: {k: round(v, 6) for k, v in with_top5(accuracy_report(preds[m], labels, classes["groups"]),
                                                        top5[m]).items()}
               for m in METHODS}
    if dimensions is not None:
        metrics["routing"] = routing_summary(routing, labels, classes["groups"], dimensions,
                                             model.library_mask.cpu().numpy())
    return metrics, preds, routing


def report_metrics(test: dict, val: dict | None, kept: dict, space_check: str = "") -> dict:
    """metrics.json: test per method at the top level, `val` per method (when there is a val split), `kept`, and
    `space_check` when the features were imported and checked (classes.h5's verdict)."""
    checked = {"space_check": space_check} if space_check and space_check != NOT_CHECKED else {}
    return {**test, **({"val": val} if val is not None else {}), "kept": kept, **checked}

