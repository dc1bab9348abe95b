"""Every method scored on one split of cached features, batch by batch (memory does not grow with C x N).

    preds, routing, top5 = predict_methods(model, test_feats, test_labels, fusion_weight=0.5, posthoc_tau=0.0,
                                           log_prior=class_log_prior(train_counts), batch_size=512)
    metrics = {method: with_top5(accuracy_report(preds[method], test_labels, classes["groups"]), top5[method])
               for method in METHODS}
    rows = per_class_rows(classes, preds, test_labels)          # per_class.csv

Methods: `zero_shot` (image vs class-name prompts), `zero_shot_library` (image vs each class's mean description
embedding), `base` (learned class prompts), `semantic` (router), `mdpr` (w * base + (1 - w) * semantic, minus
posthoc_tau * log prior when post-hoc logit adjustment is on). Cached multi-view features (N, A, d) are scored view
by view and their logits averaged (pipeline/model/inference.py).
"""
from __future__ import annotations

import numpy as np
import torch

from pipeline.model.inference import infer
from pipeline.model.mdpr import HeadSide, MDPRModel, fuse
from pipeline.model.metrics import per_class_accuracy, top_k_hits

METHODS = ("zero_shot", "zero_shot_library", "base", "semantic", "mdpr")
BRANCH_OF = {"zero_shot": "zero_shot", "zero_shot_library": "zero_shot_library", "base": "base", "semantic": "sem"}
"""Method -> the inference output that scores it (mdpr fuses base and sem)."""


def predict_methods(model: MDPRModel, feats: np.ndarray, labels: np.ndarray, fusion_weight: float,
                    posthoc_tau: float, log_prior: torch.Tensor, batch_size: int = 512, device="cpu",
                    progress: bool = False, side: HeadSide | None = None
                    ) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]]:
    """Predicted class per method (N,), the routing weights of each image's true class (N, V), and per method
    whether the true class is among the 5 highest logits (N,) bool, written into preallocated arrays batch by batch;
    `progress`: a bar on stderr when it takes more than a few seconds; `side`: model.class_side(), made once by a
    caller that scores several splits."""
    preds = {method: np.empty(len(labels), np.int64) for method in METHODS}
    top5 = {method: np.empty(len(labels), bool) for method in METHODS}
    routing = np.empty((len(labels), model.library_mask.shape[1]), np.float32)
    log_prior = log_prior.to(device)
    for rows, outputs in infer(model, feats, batch_size, device, zero_shot=True, progress=progress, side=side):
        logits = {method: outputs[branch] for method, branch in BRANCH_OF.items()}
        logits["mdpr"] = fuse(outputs["base"], outputs["sem"], fusion_weight, posthoc_tau, log_prior)
        true = torch.as_tensor(labels[rows]).to(device).long()
        for method in METHODS:
            preds[method][rows] = logits[method].argmax(-1).cpu().numpy()
            top5[method][rows] = top_k_hits(logits[method], true).cpu().numpy()
        routing[rows] = outputs["weights"][torch.arange(len(true), device=device), true].cpu().numpy()  # (B, V)
    return preds, routing, top5


def per_class_rows(classes: dict, preds: dict[str, np.ndarray], labels: np.ndarray) -> list[dict]:
    """One row per class: index, name, train count, group and each method's test accuracy (per_class.csv)."""
    accuracy = {m: per_class_accuracy(torch.as_tensor(p), torch.as_tensor(labels), len(classes["names"])).numpy()
                for m, p in preds.items()}
    return [{"class_index": c, "class": name, "train_count": classes["train_counts"][c], "group": classes["groups"][c],
             **{m: float(accuracy[m][c]) for m in METHODS}} for c, name in enumerate(classes["names"])]
