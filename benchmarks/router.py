"""Router forward+backward time per step: the project's einsum Router vs the reference formulation.

    .venv/bin/python benchmarks/router.py [--classes 100 365 1000] [--device cpu]

Same weights for both (the reference runs the Router's own nn.MultiheadAttention on B*C repeated sequences).
B = 128 images, V = 5 descriptions, d = 512, 8 heads. Each figure is the median over a few timed steps after a
warm-up step (the reference gets fewer steps at large C: one step there takes tens of seconds on 2 CPU cores).
Prints per-C times, the speed-up and the largest difference between the two outputs, then a one-line summary.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline.model.mdpr import Router, naive_router

BATCH, VIEWS, DIM, HEADS = 128, 5, 512, 8


def _step(run, router, image, library):
    """One forward+backward; returns (seconds, sim)."""
    router.zero_grad(set_to_none=True)
    feats = image.clone().requires_grad_(True)
    start = time.perf_counter()
    sim = run(feats)
    sim.sum().backward()
    if image.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, sim.detach()


def _median_time(run, router, image, library, reps: int, warmup: int):
    times = []
    for i in range(warmup + reps):
        seconds, sim = _step(run, router, image, library)
        if i >= warmup:
            times.append(seconds)
    return statistics.median(times), sim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, nargs="+", default=[100, 365, 1000])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    router = Router(DIM, HEADS, dropout=0.0, init="pytorch").to(args.device).train()
    image = F.normalize(torch.randn(BATCH, DIM, device=args.device), dim=-1)
    print(f"B={BATCH} V={VIEWS} d={DIM} heads={HEADS} device={args.device} threads={torch.get_num_threads()}")
    ratios = {}
    for classes in args.classes:
        library = F.normalize(torch.randn(classes, VIEWS, DIM, device=args.device), dim=-1)
        fast = lambda f, library=library: router(f, library)[0]  # noqa: E731
        naive = lambda f, library=library: naive_router(router.attn, f, library)[0]  # noqa: E731
        fast_s, fast_sim = _median_time(fast, router, image, library, reps=5, warmup=1)
        naive_reps, naive_warmup = (3, 1) if classes <= 100 else (2, 1) if classes <= 365 else (1, 0)
        naive_s, naive_sim = _median_time(naive, router, image, library, reps=naive_reps, warmup=naive_warmup)
        diff = (fast_sim - naive_sim).abs().max().item()
        ratios[classes] = naive_s / fast_s
        print(f"C={classes:5d}  router {fast_s * 1e3:9.1f} ms  reference {naive_s * 1e3:9.1f} ms "
              f"(median of {naive_reps})  speed-up {ratios[classes]:6.1f}x  max |diff| {diff:.1e}"
              + ("  MISMATCH" if diff > 1e-4 else ""))
    print("summary: router fwd+bwd speed-up over the reference: "
          + ", ".join(f"C={c}: {r:.1f}x" for c, r in ratios.items()))


if __name__ == "__main__":
    main()
