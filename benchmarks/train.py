"""Training cost of `fit` per base branch: samples/s, step time and peak memory, `residual` vs `coop`, C = 100 and 1000.

    .venv/bin/python benchmarks/train.py [--device cpu] [--classes 100 1000] [--steps 3] [--clip-model ViT-B-32]
                                          [--smoke]

Each (base, C) pair runs in a fresh child process: random unit image features (d = 512, a float16 cache), V = 5
random descriptions per class, labels drawn from a long-tailed profile (IF 100), the defaults of `train` and `model`
(batch 128, 8 heads, dropout 0.2) and `fit` for `--steps` steps (epochs of one batch each, timed through fit's
per-epoch callback): the step time is the median over the steps after the first (warm-up), samples/s = batch / step
time. `coop` adds the frozen text encoder of `--clip-model` with random weights (clip.pretrained: none; the cost
does not depend on the weights) and prompts "a photo of a {class name}." over ImageNet's class names (the first C),
as `model.base: coop` trains: the C prompts go through the text transformer, forward and backward, at every step.
Peak memory: on CPU the peak resident set of the child during `fit` (VmHWM, reset just before), next to its resident
set before `fit` (model and encoder loaded); on CUDA torch's peak allocated memory. Prints one line per pair and a
last line `SUMMARY train: C=<C>: coop <ratio>x the step time of residual; ...`.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks._smoke import parse_args  # noqa: E402
from pipeline.config.data_params import ClipParams  # noqa: E402
from pipeline.config.model_params import ModelParams, TrainParams  # noqa: E402
from pipeline.model.coop import CoOpPrompts, load_text_encoder  # noqa: E402
from pipeline.model.mdpr import MDPRModel  # noqa: E402
from pipeline.model.training import fit  # noqa: E402

VIEWS, IMBALANCE = 5, 100.0
SMOKE = {"classes": [4], "steps": 2, "clip_model": "mdpr-tiny", "dim": 64, "device": "cpu"}  # --smoke


def long_tailed_labels(classes: int, total: int, imbalance: float, gen: torch.Generator) -> torch.Tensor:
    """`total` labels drawn from the exponential class profile p_i ~ IF^(-i/(C-1)) (rare classes may get none)."""
    profile = torch.tensor([imbalance ** (-i / (classes - 1)) for i in range(classes)])
    return torch.multinomial(profile / profile.sum(), total, replacement=True, generator=gen)


def memory_mb(field: str) -> float:
    """VmRSS or VmHWM (peak) of this process in MB, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(base: str, classes: int, steps: int, device: str, clip_model: str, dim: int) -> dict:
    """Build the head (and the coop prompts), train `steps` steps, return the figures."""
    gen = torch.Generator().manual_seed(0)
    params = TrainParams(epochs=steps)
    total = params.batch_size  # one step per epoch
    feats = F.normalize(torch.randn(total, dim, generator=gen), dim=-1).half()  # (N, d), like a float16 cache
    labels = long_tailed_labels(classes, total, IMBALANCE, gen)
    counts = torch.bincount(labels, minlength=classes)
    class_feats = F.normalize(torch.randn(classes, dim, generator=gen), dim=-1)  # (C, d)
    library = F.normalize(torch.randn(classes, VIEWS, dim, generator=gen), dim=-1).half()  # (C, V, d)
    model_params = ModelParams(base=base)
    prompts = None
    if base == "coop":
        from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES  # open_clip (~4 s to import): coop only

        text = load_text_encoder(ClipParams(model=clip_model, pretrained="none", seed=0), device)
        prompts = CoOpPrompts(text, list(IMAGENET_CLASSNAMES[:classes]), model_params, seed=0)
    model = MDPRModel(class_feats, library, None, model_params, seed=0, prompts=prompts)
    rss_before = memory_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak resident set (VmHWM) to the current one
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    stamps = [time.perf_counter()]

    def log_epoch(_record: dict) -> None:  # after each step (fit reads .item() of the losses: the device is synced)
        stamps.append(time.perf_counter())

    fit(model, feats, labels, counts, params, device=device, log_epoch=log_epoch)
    peak = torch.cuda.max_memory_allocated() / 2 ** 20 if device.startswith("cuda") else memory_mb("VmHWM")
    times = torch.tensor(stamps, dtype=torch.float64).diff()  # (steps,) seconds
    step = float(times[1:].median()) if steps > 1 else float(times[0])
    return {"base": base, "classes": classes, "steps": steps, "first_s": float(times[0]), "step_s": step,
            "samples_per_s": total / step, "ms_per_step": step * 1e3, "rss_before_mb": rss_before, "peak_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--classes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--bases", nargs="+", default=["residual", "coop"])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--clip-model", default="ViT-B-32")
    parser.add_argument("--dim", type=int, default=512, help="feature dimension d (the --clip-model's, for coop)")
    parser.add_argument("--child", nargs=2, metavar=("BASE", "CLASSES"), help=argparse.SUPPRESS)
    args = parse_args(parser, SMOKE)
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.steps, args.device, args.clip_model,
                                     args.dim)))
        return
    print(f"device={args.device} threads={torch.get_num_threads()} batch=128 V={VIEWS} d={args.dim} steps={args.steps} "
          f"coop text encoder={args.clip_model} (random init), n_ctx=4")
    results = []
    for classes in args.classes:
        for base in args.bases:
            out = subprocess.run([sys.executable, __file__, "--child", base, str(classes), "--steps", str(args.steps),
                                  "--device", args.device, "--clip-model", args.clip_model,
                                  "--dim", str(args.dim)],
                                 capture_output=True, text=True)
            if out.returncode:
                sys.exit(f"{base} C={classes} failed ({out.returncode}):\n{out.stderr[-2000:]}")
            result = json.loads(out.stdout.strip().splitlines()[-1])
            results.append(result)
            memory = "peak allocated" if args.device.startswith("cuda") else \
                f"RSS before fit {result['rss_before_mb']:.0f} MB, peak RSS during fit"
            print(f"{base:8s} C={classes:5d}: {result['samples_per_s']:8.1f} samples/s, {result['ms_per_step']:8.0f} "
                  f"ms/step (median of steps 2-{result['steps']}; first step {result['first_s']:.1f} s); {memory} "
                  f"{result['peak_mb']:.0f} MB",
                  flush=True)
    by = {(r["base"], r["classes"]): r for r in results}
    ratios = [f"C={c}: coop {by[('coop', c)]['ms_per_step'] / by[('residual', c)]['ms_per_step']:.1f}x the step "
              f"time of residual" for c in args.classes if ("coop", c) in by and ("residual", c) in by]
    print("SUMMARY train: " + "; ".join(ratios))


if __name__ == "__main__":
    main()
