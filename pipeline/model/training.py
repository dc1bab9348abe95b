"""Training of an `MDPRModel` on cached features.

    state, history, kept = fit(model, train_feats, train_labels, train_counts, TrainParams(),
                               val=(val_feats, val_labels), fusion=EvaluateParams())

`fit` runs AdamW with a cosine schedule from `lr` to `lr_min`, stepped per epoch (official code) or per step.
Features stay on `device` in their stored dtype (float16 caches stay float16) and are gathered by index and cast to
float32 per batch; on CUDA the forward runs under bf16 autocast. A CPU run is bit-reproducible for a fixed
`params.seed` (shuffling uses its own torch.Generator; torch is seeded for dropout). `train_feats` may also be
(N, A, d) cached augmented views: each epoch draws one view per image.

Model selection: with `val`, before training (epoch 0: the untrained head, where the base branch is zero-shot
CLIP) and after every epoch the fusion weight and post-hoc tau are chosen on val as `fusion` names them
(pipeline/model/selection.py; a number is used as is), and the epoch with the best val mean-class accuracy of that
fused prediction is kept (the earliest on ties, except that a trained epoch wins a tie with epoch 0): training
that only hurts on val is caught, not kept. Without `val`: the last epoch, and `auto` is refused. `kept` records
the epoch and the fusion values with where each came from; the model ends holding that state. Test data never
enters here.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np
import torch

from pipeline.config.model_params import EvaluateParams, TrainParams
from pipeline.core.device import autocast
from pipeline.model.inference import branch_logits
from pipeline.model.losses import KAProjection, class_log_prior, mdpr_loss, warmup_factor
from pipeline.model.mdpr import MDPRModel
from pipeline.model.metrics import routing_entropy
from pipeline.model.selection import auto_keys, choose_fusion, require_val


def fit(model: MDPRModel, train_feats: torch.Tensor, train_labels: torch.Tensor, train_counts,
        params: TrainParams, val: Optional[tuple] = None, fusion: EvaluateParams = EvaluateParams(),
        device: str = "cpu", log_epoch: Optional[Callable[[dict], None]] = None) -> tuple[dict, list[dict], dict]:
    """Train `model`; return (kept state_dict on CPU, one dict per epoch of losses and accuracies, what was kept)."""
    require_val(fusion, val is not None, "the data given to fit")
    device = torch.device(device)
    torch.manual_seed(params.seed)
    model.to(device)
    feats = torch.as_tensor(train_feats).to(device)  # (N, d) or (N, A, d), stored dtype
    labels = torch.as_tensor(train_labels).to(device, torch.long)  # (N,)
    log_prior = class_log_prior(train_counts, params.prior_smoothing).to(device)  # (C,)
    ka_projection = (KAProjection(model.class_feats.shape[1], params.ka_dim, params.seed).to(device)
                     if params.lambda_ka > 0 else None)
    trained = list(model.parameters()) + (list(ka_projection.parameters()) if ka_projection is not None else [])
    optimizer = torch.optim.AdamW(trained, lr=params.lr, weight_decay=params.weight_decay)
    steps_per_epoch = math.ceil(len(labels) / params.batch_size)
    per_epoch = params.lr_schedule == "per_epoch"
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=params.epochs if per_epoch else params.epochs * steps_per_epoch, eta_min=params.lr_min)
    shuffle = torch.Generator().manual_seed(params.seed)
    history, best, best_state, kept = [], (-math.inf, 0), None, {}
    for epoch in range(0 if val is not None else 1, params.epochs + 1):  # with val, epoch 0 = the untrained head
        record = {"epoch": epoch}
        if epoch:
            record.update(_train_epoch(model, feats, labels, log_prior, params, epoch - 1, optimizer,
                                       None if per_epoch else schedule, shuffle, ka_projection))
            if per_epoch:
                schedule.step()
        if val is not None:
            out = branch_logits(model, val[0], device=device, labels=val[1])
            choice = choose_fusion(out["base"], out["sem"], val[1], train_counts, fusion)
            record.update({f"val_{name}": value for name, value in choice.report.items()},  # top1, top5, groups
                          val_fusion_weight=choice.fusion_weight, val_posthoc_tau=choice.posthoc_tau)
            record.update(_val_entropy(model, out["routing"], val[1]))
        history.append(record)
        if log_epoch is not None:
            log_epoch(record)
        # the best val score, earliest on ties, but a trained epoch wins a tie with the untrained head
        score = (record["val_mean_class"], min(epoch, 1)) if val is not None else (epoch, 0)
        if score > best:
            best, best_state = score, {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            kept = _kept(record, fusion, val is not None)
    model.load_state_dict(best_state)
    return best_state, history, kept


def _val_entropy(model: MDPRModel, routing: torch.Tensor, labels) -> dict:
    """val_routing_entropy: the mean normalised entropy of the val images' true-class routing (1 = flat), over the
    images whose class has >= 2 valid descriptions (nothing when none has)."""
    counts = model.library_mask.sum(1).cpu().numpy()[np.asarray(labels)]  # (N,)
    routed = counts >= 2
    if not routed.any():
        return {}
    return {"val_routing_entropy": float(routing_entropy(routing.numpy()[routed], counts[routed]).mean())}


def _kept(record: dict, fusion: EvaluateParams, has_val: bool) -> dict:
    """The kept epoch and fusion values, each with where it came from (`val`, `params` or `last epoch`)."""
    auto = auto_keys(fusion)
    kept = {"epoch": record["epoch"], "epoch_from": "val" if has_val else "last epoch (no val split)"}
    for key in ("fusion_weight", "posthoc_tau"):
        kept[key] = record[f"val_{key}"] if key in auto else getattr(fusion, key)
        kept[f"{key}_from"] = "val" if key in auto else "params"
    if has_val:
        kept.update(val_top1=record["val_top1"], val_mean_class=record["val_mean_class"])
    return kept


def _train_epoch(model, feats, labels, log_prior, params, epoch, optimizer, step_schedule, shuffle,
                 ka_projection) -> dict:
    """One pass over the shuffled training set: mean loss parts, train accuracy of each branch (dropout on), and the
    learning rate of its last step."""
    model.train()
    count = len(labels)
    steps_per_epoch = math.ceil(count / params.batch_size)
    order = torch.randperm(count, generator=shuffle).to(feats.device)  # (N,)
    views = torch.randint(feats.shape[1], (count,), generator=shuffle).to(feats.device) if feats.dim() == 3 else None
    sums, correct = {}, {"base": torch.zeros((), device=feats.device), "sem": torch.zeros((), device=feats.device)}
    for step, idx in enumerate(order.split(params.batch_size)):
        batch = (feats[idx] if views is None else feats[idx, views[idx]]).float()  # (b, d)
        warmup = warmup_factor(params, epoch, params.epochs, epoch * steps_per_epoch + step,
                               params.epochs * steps_per_epoch)
        with autocast(feats.device):
            outputs = model(batch)
            loss, parts = mdpr_loss(outputs, labels[idx], log_prior, params, warmup, model, ka_projection)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        lr = optimizer.param_groups[0]["lr"]  # the rate this step applies
        optimizer.step()
        if step_schedule is not None:
            step_schedule.step()
        parts["loss"] = loss.detach()
        for name, value in parts.items():
            sums[name] = sums.get(name, 0.0) + value.float().to(feats.device) * len(idx)
        for branch in correct:
            correct[branch] += (outputs[branch].detach().argmax(-1) == labels[idx]).sum()
    record = {name: (total / count).item() for name, total in sums.items()}
    record.update({f"train_acc_{branch}": (hits / count).item() for branch, hits in correct.items()}, lr=lr)
    return record
