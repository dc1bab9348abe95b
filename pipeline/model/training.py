"""Training of an `MDPRModel` on cached features.

    state, history = fit(model, train_feats, train_labels, train_counts, TrainParams(), val=(val_feats, val_labels))

`fit` runs AdamW with a per-step cosine schedule to zero. Features stay on `device` in their stored dtype (float16
caches stay float16) and are gathered by index and cast to float32 per batch; on CUDA the forward runs under bf16
autocast. A CPU run is bit-reproducible for a fixed `params.seed` (shuffling uses its own torch.Generator; torch is
seeded for dropout). `train_feats` may also be (N, A, d) cached augmented views: each epoch draws one view per image.

Model selection: with `val`, the returned state is the epoch with the best validation mean-class accuracy of the
fused logits (earliest on ties); without it, the last epoch. The model ends holding that state. Test data never
enters here.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch

from pipeline.config.model_params import TrainParams
from pipeline.core.device import autocast
from pipeline.model.inference import branch_logits
from pipeline.model.losses import class_log_prior, mdpr_loss
from pipeline.model.mdpr import MDPRModel, fuse
from pipeline.model.metrics import overall_accuracy


def fit(model: MDPRModel, train_feats: torch.Tensor, train_labels: torch.Tensor, train_counts,
        params: TrainParams, val: Optional[tuple] = None, fusion_weight: float = 0.5, device: str = "cpu",
        log_epoch: Optional[Callable[[dict], None]] = None) -> tuple[dict, list[dict]]:
    """Train `model`; return (selected state_dict on CPU, one dict per epoch of losses and accuracies)."""
    device = torch.device(device)
    torch.manual_seed(params.seed)
    model.to(device)
    feats = torch.as_tensor(train_feats).to(device)  # (N, d) or (N, A, d), stored dtype
    labels = torch.as_tensor(train_labels).to(device, torch.long)  # (N,)
    log_prior = class_log_prior(train_counts).to(device)  # (C,)
    steps_per_epoch = math.ceil(len(labels) / params.batch_size)
    total_steps = params.epochs * steps_per_epoch
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total_steps)))
    shuffle = torch.Generator().manual_seed(params.seed)
    history, best_score, best_state = [], -math.inf, None
    for epoch in range(params.epochs):
        record = _train_epoch(model, feats, labels, log_prior, params, epoch * steps_per_epoch, total_steps,
                              optimizer, schedule, shuffle, fusion_weight)
        record["epoch"] = epoch + 1
        if val is not None:
            report = _evaluate(model, val, train_counts, fusion_weight, device)
            record.update(val_top1=report["top1"], val_mean_class=report["mean_class"])
        history.append(record)
        if log_epoch is not None:
            log_epoch(record)
        score = record["val_mean_class"] if val is not None else epoch
        if score > best_score or best_state is None:
            best_score, best_state = score, {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return best_state, history


def _train_epoch(model, feats, labels, log_prior, params, first_step, total_steps, optimizer, schedule, shuffle,
                 fusion_weight) -> dict:
    """One pass over the shuffled training set; mean loss parts, train accuracy (fused, dropout on), last lr."""
    model.train()
    count = len(labels)
    order = torch.randperm(count, generator=shuffle).to(feats.device)  # (N,)
    views = torch.randint(feats.shape[1], (count,), generator=shuffle).to(feats.device) if feats.dim() == 3 else None
    sums, correct = {}, torch.zeros((), device=feats.device)
    for step, idx in enumerate(order.split(params.batch_size)):
        batch = (feats[idx] if views is None else feats[idx, views[idx]]).float()  # (b, d)
        with autocast(feats.device):
            outputs = model(batch)
            loss, parts = mdpr_loss(outputs, labels[idx], log_prior, params, first_step + step, total_steps, model)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        parts["loss"] = loss.detach()
        for name, value in parts.items():
            sums[name] = sums.get(name, 0.0) + value.float().to(feats.device) * len(idx)
        fused = fuse(outputs["base"].detach().float(), outputs["sem"].detach().float(), fusion_weight)
        correct += (fused.argmax(-1) == labels[idx]).sum()
    record = {name: (total / count).item() for name, total in sums.items()}
    record.update(train_acc=(correct / count).item(), lr=optimizer.param_groups[0]["lr"])
    return record


def _evaluate(model, val: tuple, train_counts, fusion_weight: float, device) -> dict:
    """Accuracy report of the fused logits on (feats, labels)."""
    val_feats, val_labels = val
    outputs = branch_logits(model, val_feats, device=device)
    pred = fuse(outputs["base"], outputs["sem"], fusion_weight).argmax(-1)  # (N,)
    return overall_accuracy(pred, torch.as_tensor(val_labels), len(train_counts))
