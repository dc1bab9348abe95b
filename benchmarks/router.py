"""Router forward+backward per training step: time, speed-up over the reference formulation, and achieved GFLOPS
against a matmul probe measured in the same run.

    .venv/bin/python benchmarks/router.py [--classes 100 365 1000] [--reps 7] [--threads N] [--device cpu] [--smoke]

B = 128 images, V = 5 descriptions, d = 512, 8 heads (the defaults of `train` and `model`), every weight learnable
(as in training), the library frozen. The reference runs the Router's own nn.MultiheadAttention on B*C repeated
sequences, with the same weights (fewer steps at large C: one step there takes tens of seconds and ~9 GB).

Achieved GFLOPS = the matmul FLOPs the project's formulation must do per step (`step_flops`, counted from the
shapes: 2 x multiply-adds of every matrix product in the forward and the hand-written backward; elementwise work,
softmax and reductions are not counted) / the step's time. The probe is float32 (2048 x 2048) @ (2048 x 2048)
matmuls, as many as make about the step's FLOPs (so that probe and step last about as long and see a shared
machine's load alike), timed between the router steps with the same threads; "% of peak" is best step GFLOPS / best
probe GFLOPS, and the same ratio of medians is printed beside it.
Last line: `SUMMARY router: <speed-up>x vs naive, <percent>% of matmul peak` at the largest C.
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
from benchmarks._smoke import parse_args
from pipeline.model.router import Router, naive_router

BATCH, VIEWS, DIM, HEADS = 128, 5, 512, 8
PROBE = 2048
SMOKE = {"classes": [4], "reps": 2, "device": "cpu"}  # --smoke


def step_flops(batch: int, classes: int, views: int, dim: int, heads: int) -> float:
    """Matmul FLOPs of one forward+backward of the Router (pipeline/model/router_kernel.py), 2 per multiply-add."""
    rows, slots = views * classes, heads * views  # VC description rows; hV (head, description) slots per class
    forward = (2 * rows * dim * 2 * dim          # key and value projections of every description
               + 2 * batch * dim * dim * 2       # queries and W_out^T f of the images
               + 2 * 2 * rows * batch * dim      # scores and f . values, per head (h x e = d)
               + 2 * rows * dim * dim            # u = W_out[:, h] value, per head
               + 2 * classes * slots * slots * dim   # Gram matrices G_c = u_c u_c^T
               + 2 * classes * slots * slots * batch)  # G a
    backward = (2 * classes * slots * slots * batch   # dG = a (w a)^T
                + 2 * classes * slots * slots * dim   # du = (dG + dG^T) u
                + 2 * 2 * rows * dim * dim            # d values and d W_out from du
                + 2 * 2 * 2 * rows * batch * dim      # d scores -> d (queries, W_out^T f) and d (keys, values)
                + 2 * 2 * batch * dim * dim * 2       # d W_q, d W_out and d f through the two image projections
                + 2 * rows * dim * 2 * dim)           # d (W_k, W_v) from d (keys, values)
    return float(forward + backward)


def _step(run, router, image) -> tuple[float, torch.Tensor]:
    """One forward+backward; returns (seconds, sim)."""
    router.zero_grad(set_to_none=True)
    feats = image.clone().requires_grad_(True)
    start = time.perf_counter()
    sim = run(feats)
    sim.sum().backward()
    if image.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, sim.detach()


def _probe(first: torch.Tensor, second: torch.Tensor, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        first @ second
    if first.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, nargs="+", default=[100, 365, 1000])
    parser.add_argument("--reps", type=int, default=7, help="timed steps of the project's router per C")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--device", default="cpu")
    args = parse_args(parser, SMOKE)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    router = Router(DIM, HEADS, dropout=0.0, init="pytorch").to(args.device).train()
    image = F.normalize(torch.randn(BATCH, DIM, device=args.device), dim=-1)
    probe_a, probe_b = (torch.randn(PROBE, PROBE, device=args.device) for _ in range(2))
    print(f"B={BATCH} V={VIEWS} d={DIM} heads={HEADS} device={args.device} threads={torch.get_num_threads()}")
    summary = ""
    for classes in args.classes:
        library = F.normalize(torch.randn(classes, VIEWS, DIM, device=args.device), dim=-1)
        fast = lambda f, library=library: router(f, library)[0]  # noqa: E731
        naive = lambda f, library=library: naive_router(router.attn, f, library)[0]  # noqa: E731
        flops = step_flops(BATCH, classes, VIEWS, DIM, HEADS)
        probe_count = max(1, round(flops / (2.0 * PROBE ** 3)))
        probe_flops = probe_count * 2.0 * PROBE ** 3
        _step(fast, router, image), _probe(probe_a, probe_b, 1)  # warm-up
        steps, probes = [], []
        for _ in range(args.reps):  # router steps and probes interleaved
            seconds, fast_sim = _step(fast, router, image)
            steps.append(seconds)
            probes.append(_probe(probe_a, probe_b, probe_count))
        naive_reps = 3 if classes <= 100 else 2 if classes <= 365 else 1
        naive_times = []
        for _ in range(naive_reps):
            seconds, naive_sim = _step(naive, router, image)
            naive_times.append(seconds)
        best_gflops, probe_gflops = flops / min(steps) / 1e9, probe_flops / min(probes) / 1e9
        median_percent = 100 * (flops / statistics.median(steps)) / (probe_flops / statistics.median(probes))
        speedup = min(naive_times) / min(steps)
        diff = (fast_sim - naive_sim).abs().max().item()
        print(f"C={classes:5d}  router {min(steps) * 1e3:8.1f} ms (best of {args.reps}; median "
              f"{statistics.median(steps) * 1e3:.1f})  reference {min(naive_times) * 1e3:9.1f} ms (best of "
              f"{naive_reps})  speed-up {speedup:6.1f}x  max |diff| {diff:.1e}" + ("  MISMATCH" if diff > 1e-4 else ""))
        print(f"         {flops / 1e9:5.1f} GFLOP per step -> {best_gflops:6.1f} GFLOPS; matmul probe "
              f"{probe_gflops:6.1f} GFLOPS -> {100 * best_gflops / probe_gflops:4.1f}% of peak (medians: "
              f"{median_percent:4.1f}%)")
        summary = f"SUMMARY router: {speedup:.1f}x vs naive, {100 * best_gflops / probe_gflops:.0f}% of matmul peak"
    print(summary)


if __name__ == "__main__":
    main()
