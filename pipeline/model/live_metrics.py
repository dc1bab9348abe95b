"""DVCLive names of the training metrics, the per-epoch progress line, and the kept-epoch summary (live/metrics.json).

    for name, value in live_metrics(record).items():      # one epoch of `fit`'s history
        live.log_metric(name, value)                      # -> live/plots/metrics/<name>.tsv, x = step = epoch
    write_json(paths.LIVE_DIR / "metrics.json", kept_summary(history, kept))

Names (README, "Metric names"): losses under `loss/`, training accuracies of each branch under `train/`, the val
split's scores of the fused prediction (with the fusion values in use) under `val/`, the optimiser's schedule under
`schedule/`. DVCLive's own summary holds the last epoch's values; the kept epoch is usually another one, so the
summary is replaced by `kept_summary`: `kept_epoch` and every metric of that epoch (as `dvc exp show` lists it).
"""
from __future__ import annotations

LIVE_NAMES = {
    "loss": "loss/total",              # the optimised sum: base + lambda_sem * s * sem (+ PA, KA terms)
    "base": "loss/base",               # CE or LA-CE of the base branch
    "sem": "loss/sem",                 # LA-CE of the semantic (router) branch
    "pa": "loss/pa",                   # prior alignment (only with train.lambda_pa > 0)
    "ka": "loss/ka",                   # knowledge alignment (only with train.lambda_ka > 0)
    "train_acc_base": "train/base_top1",   # training accuracy of the base branch (dropout on)
    "train_acc_sem": "train/sem_top1",     # training accuracy of the semantic branch
    "val_top1": "val/top1",            # val accuracy of the fused prediction
    "val_top5": "val/top5",            # the true class among its 5 highest fused logits
    "val_mean_class": "val/mean_class",    # mean per-class val accuracy: the score that keeps the epoch
    "val_fusion_weight": "val/fusion_weight",  # w in use at this epoch (chosen on val when `auto`)
    "val_posthoc_tau": "val/posthoc_tau",      # post-hoc tau in use at this epoch
    "val_routing_entropy": "val/routing_entropy",  # mean H / log V of the val images' true-class routing (1 = flat)
    "lr": "schedule/lr",               # learning rate of the epoch's last step
    "lambda_sem": "schedule/sem_weight",   # lambda_sem x the warm-up factor s of the epoch's last step
}
"""`fit`'s history keys -> DVCLive metric names."""


def live_metrics(record: dict) -> dict[str, float]:
    """One epoch's record as DVCLive names (the epoch itself is DVCLive's step); unknown keys are kept as they are."""
    return {LIVE_NAMES.get(key, key): value for key, value in record.items() if key != "epoch"}


def kept_summary(history: list[dict], kept: dict) -> dict:
    """live/metrics.json: `kept_epoch`, `epochs` trained, and the kept epoch's metrics nested by name
    ({"loss": {"total": ...}, "val": {"top1": ...}, ...})."""
    record = next(r for r in history if r["epoch"] == kept["epoch"])
    summary = {"kept_epoch": kept["epoch"], "epochs": history[-1]["epoch"]}
    for name, value in live_metrics(record).items():
        group, _, leaf = name.rpartition("/")
        (summary.setdefault(group, {}) if group else summary)[leaf] = value
    return summary


def epoch_line(record: dict, epochs: int, seconds: float) -> str:
    """One progress line per epoch on stderr: loss and train accuracy of each branch (epoch 0, with a val split: the
    untrained head), and, when there is a val split, validation accuracy of the fused prediction and the mean
    normalised entropy of the val images' true-class routing (1 = flat: the router does not route)."""
    parts = [f"loss {record['loss']:.4f}"] if "loss" in record else ["untrained head"]
    parts += [f"train acc {branch} {record[f'train_acc_{branch}']:.3f}" for branch in ("base", "sem")
              if f"train_acc_{branch}" in record]
    if "val_mean_class" in record:
        parts += [f"val top-1 {record['val_top1']:.3f}", f"val mean-class {record['val_mean_class']:.3f}"]
    if "val_routing_entropy" in record:
        parts.append(f"val routing entropy {record['val_routing_entropy']:.3f}")
    return f"train: epoch {record['epoch']}/{epochs}: {', '.join(parts)} ({seconds:.0f} s)"
