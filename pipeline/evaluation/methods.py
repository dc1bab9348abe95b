"""Every method scored on one split of cached features, class chunk by chunk and batch by batch (memory does not grow
with C x N, nor with C beyond a chunk's class side).

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

from pipeline.core.progress import progress_bar
from pipeline.model import router
from pipeline.model.inference import infer
from pipeline.model.mdpr import HeadSide, MDPRModel, fuse
from pipeline.model.metrics import per_class_accuracy

METHODS = ("zero_shot", "zero_shot_library", "base", "semantic", "mdpr")
BRANCH_OF = {"zero_shot": "zero_shot", "zero_shot_library": "zero_shot_library", "base": "base", "semantic": "sem"}
"""Method -> the inference output that scores it (mdpr fuses base and sem)."""


def predict_methods(model: MDPRModel, feats: np.ndarray, labels: np.ndarray, fusion_weight: float,
                    posthoc_tau: float, log_prior: torch.Tensor, batch_size: int = 512, device="cpu",
                    progress: bool = False, side: HeadSide | None = None
                    ) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]]:
    """Predicted class per method (N,), the routing weights of each image's true class (N, V), and per method
    whether the true class is among the 5 highest logits (N,) bool; `progress`: a bar on stderr when it takes more
    than a few seconds; `side`: model.class_side(router=False), made once by a caller that scores several splits.

    Classes are scored in chunks of router.SIDE_CHUNK (model.side_chunks), every image per chunk, keeping per image
    and method only the best class so far and the 5 highest logits: no (N, C) logits and no whole router class side are
    ever held (at C = 8,142 those would be 795 MB per method and 219 MB). Ties keep the lowest class index, as argmax.
    """
    if side is None:
        with torch.inference_mode():
            side = model.class_side(router=False)
    labels_t = torch.as_tensor(labels).long()
    best = {method: RunningBest(len(labels)) for method in METHODS}
    routing = np.empty((len(labels), model.library_mask.shape[1]), np.float32)
    log_prior = log_prior.to(device)
    chunks = -(-len(side.class_weights) // router.SIDE_CHUNK)
    with progress_bar(len(labels) * chunks, "score", "img", progress) as bar:
        for start, stop, part in model.side_chunks(side):
            for rows, outputs in infer(model, feats, batch_size, device, zero_shot=True, side=part):
                logits = {method: outputs[branch] for method, branch in BRANCH_OF.items()}
                logits["mdpr"] = fuse(outputs["base"], outputs["sem"], fusion_weight, posthoc_tau,
                                      log_prior[start:stop])
                for method in METHODS:
                    best[method].update(rows, logits[method].cpu(), start)
                true = labels_t[rows]
                inside = ((true >= start) & (true < stop)).nonzero()[:, 0]  # batch rows whose class is here
                weights = outputs["weights"].cpu()[inside, true[inside] - start]  # (b, V)
                routing[np.arange(rows.start, rows.stop)[inside.numpy()]] = weights.numpy()
                bar.update(len(true))
    return ({m: best[m].index.numpy() for m in METHODS}, routing,
            {m: (best[m].top_index == labels_t[:, None]).any(-1).numpy() for m in METHODS})


class RunningBest:
    """Per image: the best class so far (argmax order: the lowest index wins a tie) and the K highest logits."""

    K = 5

    def __init__(self, count: int):
        self.value = torch.full((count,), -torch.inf)
        self.index = torch.zeros(count, dtype=torch.long)
        self.top_value = torch.full((count, self.K), -torch.inf)
        self.top_index = torch.full((count, self.K), -1, dtype=torch.long)

    def update(self, rows: slice, logits: torch.Tensor, start: int) -> None:
        """Merge the logits (B, c) of classes start..start+c-1 of images `rows`."""
        value, index = logits.max(-1)  # the first of tied maxima, as argmax
        better = value > self.value[rows]  # strict: an earlier class keeps a tie
        self.value[rows] = torch.where(better, value, self.value[rows])
        self.index[rows] = torch.where(better, index + start, self.index[rows])
        top = logits.topk(min(self.K, logits.shape[1]), dim=-1)
        values = torch.cat([self.top_value[rows], top.values], 1)
        order = values.argsort(dim=1, descending=True, stable=True)[:, :self.K]
        self.top_value[rows] = values.gather(1, order)
        self.top_index[rows] = torch.cat([self.top_index[rows], top.indices + start], 1).gather(1, order)


def per_class_rows(classes: dict, preds: dict[str, np.ndarray], labels: np.ndarray) -> list[dict]:
    """One row per class: index, name, train count, group and each method's test accuracy (per_class.csv)."""
    accuracy = {m: per_class_accuracy(torch.as_tensor(p), torch.as_tensor(labels), len(classes["names"])).numpy()
                for m, p in preds.items()}
    return [{"class_index": c, "class": name, "train_count": classes["train_counts"][c], "group": classes["groups"][c],
             **{m: float(accuracy[m][c]) for m in METHODS}} for c, name in enumerate(classes["names"])]
