"""Choices made on the val split, never on test: the fusion weight and post-hoc tau (`auto`), and the kept epoch.

    choice = choose_fusion(val_base, val_sem, val_labels, train_counts, EvaluateParams(fusion_weight="auto"))
    choice.fusion_weight, choice.posthoc_tau, choice.report["mean_class"]

Grids: fusion weight 0, 0.1, ..., 1 and post-hoc tau 0, 0.25, ..., 2; a number in the params is a one-point grid,
and two `auto` keys are searched jointly. The criterion is the val mean-class accuracy of the fused prediction (the
same score training uses to keep its best epoch). Ties go to the candidate nearest the defaults: smallest tau, then
w nearest 0.5 (then the smaller w). Training calls this once per epoch; the evaluate stage and `mdpr predict` use
the choice recorded with the kept epoch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.config.model_params import EvaluateParams
from pipeline.core.errors import UserError
from pipeline.model.losses import class_log_prior
from pipeline.model.mdpr import fuse
from pipeline.model.metrics import overall_accuracy, per_class_accuracy, top_k_hits, with_top5

FUSION_GRID = tuple(i / 10 for i in range(11))        # 0, 0.1, ..., 1
POSTHOC_TAU_GRID = tuple(i / 4 for i in range(9))     # 0, 0.25, ..., 2
AUTO_KEYS = ("fusion_weight", "posthoc_tau")


@dataclass(frozen=True)
class FusionChoice:
    """The fusion weight and post-hoc tau in use, and the top1 and mean_class they give on the split they were chosen
    on."""

    fusion_weight: float
    posthoc_tau: float
    report: dict


def auto_keys(params: EvaluateParams) -> list[str]:
    """The evaluate keys set to `auto`."""
    return [key for key in AUTO_KEYS if getattr(params, key) == "auto"]


def require_val(params: EvaluateParams, has_val: bool, where: str) -> None:
    """Refuse `auto` when `where` (e.g. "dataset 'cifar100-lt'") has no val split (choosing on test is test tuning)."""
    if auto_keys(params) and not has_val:
        keys = " and ".join(f"evaluate.{key}" for key in auto_keys(params))
        raise UserError(f"{keys} = auto chooses on the val split, but {where} has none; set a number "
                        "(0.5 and 0 are the official code's values) or use a dataset with a val split.")


def candidates(params: EvaluateParams) -> list[tuple[float, float]]:
    """(w, tau) pairs in tie-break order: tau ascending, then w by distance from 0.5."""
    weights = (sorted(FUSION_GRID, key=lambda w: (abs(w - 0.5), w)) if params.fusion_weight == "auto"
               else [params.fusion_weight])
    taus = POSTHOC_TAU_GRID if params.posthoc_tau == "auto" else [params.posthoc_tau]
    return [(w, tau) for tau in taus for w in weights]


def choose_fusion(base: torch.Tensor, sem: torch.Tensor, labels, train_counts, params: EvaluateParams) -> FusionChoice:
    """The candidate with the best mean-class accuracy of argmax(fuse(base, sem, w, tau)): base, sem (N, C); its
    report has top5 beside top1."""
    labels = torch.as_tensor(labels).long()
    log_prior = class_log_prior(train_counts).to(base.device)  # (C,)
    best, best_score, best_pred = None, -1.0, None
    for weight, tau in candidates(params):
        pred = fuse(base, sem, weight, tau, log_prior).argmax(-1).cpu()  # (N,)
        per_class = per_class_accuracy(pred, labels, base.shape[1])  # (C,)
        score = per_class[~per_class.isnan()].mean().item()
        if score > best_score:
            best, best_score, best_pred = (weight, tau), score, pred
    hits = top_k_hits(fuse(base, sem, best[0], best[1], log_prior), labels.to(base.device))  # (N,)
    return FusionChoice(best[0], best[1], with_top5(overall_accuracy(best_pred, labels, base.shape[1]), hits))


def describe_kept(kept: dict) -> str:
    """One line saying which epoch and fusion values are in use and where each came from."""
    line = (f"kept epoch {kept['epoch']} ({kept['epoch_from']}), fusion weight {kept['fusion_weight']:g} "
            f"({kept['fusion_weight_from']}), post-hoc tau {kept['posthoc_tau']:g} ({kept['posthoc_tau_from']})")
    if kept["epoch_from"] != "val":
        line += ("\nnote: this dataset has no val split, so the last epoch is kept whether or not training overfit, "
                 "and nothing was chosen on held-out data")
    elif kept["epoch"] == 0:
        line += ("\nnote: no trained epoch beat the untrained head on val (epoch 0, where the base branch is zero-shot "
                 "CLIP): training only hurt; try a lower train.lr or fewer train.epochs")
    return line
