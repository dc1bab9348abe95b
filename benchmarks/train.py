"""Training throughput of `fit` (samples/s) on random cached features at CIFAR-100-LT and ImageNet-LT sizes.

    .venv/bin/python benchmarks/train.py [--device cpu] [--imagenet-steps 40]

CIFAR-100-LT: C = 100, N = 10847 (IF 100), two full epochs. ImageNet-LT: C = 1000, N = 115846 features are built and
kept in float16 like a real cache, but `fit` runs one epoch on the first `--imagenet-steps` batches only (a step's
cost depends on C, V, d and the batch size, not on N), to keep the run short on a CPU. V = 5, d = 512, defaults
of `train` and `model` otherwise (batch 128, 8 heads, dropout 0.2). Prints per-dataset figures and a summary line.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline.config.model_params import ModelParams, TrainParams
from pipeline.model.mdpr import MDPRModel
from pipeline.model.training import fit

VIEWS, DIM = 5, 512


def long_tailed_labels(classes: int, total: int, imbalance: float, gen: torch.Generator) -> torch.Tensor:
    """Shuffled labels with exponential class counts n_i ~ IF^(-i/(C-1)), scaled to `total` images."""
    profile = torch.tensor([imbalance ** (-i / (classes - 1)) for i in range(classes)])
    counts = (profile / profile.sum() * total).floor().long().clamp_min(1)
    counts[0] += total - counts.sum()
    labels = torch.repeat_interleave(torch.arange(classes), counts)
    return labels[torch.randperm(total, generator=gen)]


def bench(name: str, classes: int, total: int, imbalance: float, epochs: int, max_steps: int | None, device: str):
    gen = torch.Generator().manual_seed(0)
    feats = F.normalize(torch.randn(total, DIM, generator=gen), dim=-1).half()  # (N, d), like a float16 cache
    labels = long_tailed_labels(classes, total, imbalance, gen)
    counts = torch.bincount(labels, minlength=classes)
    class_feats = F.normalize(torch.randn(classes, DIM, generator=gen), dim=-1)
    library = F.normalize(torch.randn(classes, VIEWS, DIM, generator=gen), dim=-1).half()
    params = TrainParams(epochs=epochs)
    used = total if max_steps is None else min(total, max_steps * params.batch_size)
    model = MDPRModel(class_feats, library, None, ModelParams(), seed=0)
    start = time.perf_counter()
    fit(model, feats[:used], labels[:used], counts, params, device=device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    steps = epochs * math.ceil(used / params.batch_size)
    rate = epochs * used / seconds
    print(f"{name:14s} C={classes:5d} N={total:6d}  trained on {used} x {epochs} epoch(s) = {steps} steps in "
          f"{seconds:6.1f} s  ->  {rate:8.0f} samples/s  ({seconds / steps * 1e3:.0f} ms/step)")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--imagenet-steps", type=int, default=40)
    args = parser.parse_args()
    print(f"device={args.device} threads={torch.get_num_threads()} batch=128 V={VIEWS} d={DIM}")
    cifar = bench("CIFAR-100-LT", 100, 10847, 100.0, epochs=2, max_steps=None, device=args.device)
    imagenet = bench("ImageNet-LT", 1000, 115846, 256.0, epochs=1, max_steps=args.imagenet_steps, device=args.device)
    print(f"summary: fit throughput on {args.device}: CIFAR-100-LT {cifar:.0f} samples/s, "
          f"ImageNet-LT {imagenet:.0f} samples/s")


if __name__ == "__main__":
    main()
