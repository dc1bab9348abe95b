"""The GPU figures in one command (`make bench-gpu`): image encoding, a training step, evaluation, `pytest -m gpu`.

    python benchmarks/gpu.py [--images 4096] [--workers N] [--out-dir benchmarks] [--smoke]

Sized to finish within ~8 minutes on one GPU (a lent GPU machine has ~15 minutes of device time in all). On a
machine without CUDA it says so and exits 0 without measuring. Measures, on cuda:0:
1. encode: images/s of the embed_images stage code (EmbedJob) on `--images` JPEG files (random photographs-like
   content, 320-500 px a side, made first in a temporary folder) through ViT-B-16 (random init, no download) at
   224 px in bf16: JPEGs decoded by PIL in DataLoader workers (`embed.decode: cpu`) vs decoded by
   torchvision.io.decode_jpeg on the device (`embed.decode: gpu`); plus the bare encoder on preprocessed tensors;
2. train step: ms per step of the MDPR head at C = 1000, V = 5, d = 512, batch 128 (forward, loss, backward,
   AdamW), float32 vs bf16 autocast (what `mdpr train` uses on CUDA);
3. evaluate: images/s of `predict_methods` (every method) on 50,000 cached test features at C = 1000;
4. `pytest -m gpu` (the tests that need CUDA): passed/failed counts.
Writes `gpu_summary.json` and `gpu_summary.md` into --out-dir and prints the markdown, then a last line
`SUMMARY gpu: ...`.
--smoke runs every measuring function on the CPU at tiny sizes (mdpr-tiny; bf16 as on the GPU: a CPU runs it,
slowly), skips `pytest -m gpu` and writes into a temporary folder unless --out-dir is given: a GPU run's code is
checked before a GPU is lent.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks._smoke import parse_args

# --smoke: CPU, tiny sizes (train_step_times times the steps after 5 warm-up steps)
SMOKE = {"device": "cpu", "model": "mdpr-tiny", "images": 8, "workers": 1, "batch_size": 4, "classes": 8, "steps": 6,
         "eval_images": 64}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1))
    parser.add_argument("--out-dir", type=Path, help="default: benchmarks/ (--smoke: a temporary folder)")
    parser.add_argument("--device", default="cuda", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="ViT-B-16", help=argparse.SUPPRESS)
    parser.add_argument("--classes", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=30, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=128, help=argparse.SUPPRESS)
    parser.add_argument("--eval-images", type=int, default=50000, help=argparse.SUPPRESS)
    args = parse_args(parser, SMOKE)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench-gpu: no CUDA GPU found on this machine; nothing measured (run it on a machine with one).")
        return
    where = torch.cuda.get_device_name(0) if args.device == "cuda" else f"{args.device} (smoke run)"
    summary = {"gpu": where, "torch": torch.__version__, "cpu_workers": args.workers, "classes": args.classes,
               "eval_images": args.eval_images}
    print(f"bench-gpu on {summary['gpu']} (torch {summary['torch']}), {args.workers} DataLoader workers", flush=True)
    summary["encode"] = encode_throughput(args.images, args.workers, args.device, args.model, args.batch_size)
    summary["train_step_ms"] = train_step_times(args.classes, args.steps, args.device)
    summary["evaluate_images_per_s"] = evaluate_throughput(args.classes, args.eval_images, args.device)
    summary["pytest_gpu"] = {"exit_status": 0, "summary": "not run (--smoke)"} if args.smoke else gpu_tests()
    with tempfile.TemporaryDirectory() as scratch:
        out_dir = args.out_dir or (Path(scratch) if args.smoke else REPO / "benchmarks")
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "gpu_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        markdown = to_markdown(summary)
        (out_dir / "gpu_summary.md").write_text(markdown)
    print(markdown)
    encode, train = summary["encode"], summary["train_step_ms"]
    print(f"SUMMARY gpu: encode {encode['decode_cpu_images_per_s']} (CPU decode) / {encode['decode_gpu_images_per_s']} "
          f"(device decode) / {encode['bare_encoder_images_per_s']} (bare) images/s; train step fp32 {train['fp32']} "
          f"ms, bf16 {train['bf16']} ms; evaluate {summary['evaluate_images_per_s']} images/s; pytest -m gpu: "
          f"{summary['pytest_gpu']['summary']}")


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def encode_throughput(count: int, workers: int, device: str = "cuda", model: str = "ViT-B-16",
                      batch_size: int = 128) -> dict:
    """images/s of EmbedJob with CPU and GPU JPEG decoding, and of the bare bf16 encoder."""
    import numpy as np
    import torch
    from PIL import Image

    from pipeline.config.data_params import ClipParams
    from pipeline.features.clip import load_encoder
    from pipeline.features.embed import EmbedJob
    from pipeline.features.gpu_decode import DeviceJpegViews
    from pipeline.features.views import ViewTransform

    encoder = load_encoder(ClipParams(model=model, pretrained="none", precision="bf16"), device)
    size = json.loads(encoder.identity["image_size"])[0]
    transform = ViewTransform(encoder.preprocess, size)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        gen = np.random.default_rng(0)
        ids = [f"{k:05d}.jpg" for k in range(count)]
        for image_id in ids:  # smooth random content compresses like photographs (~20-40 KB)
            width, height = (int(v) for v in gen.integers(320, 501, 2))
            coarse = gen.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
            Image.fromarray(coarse).resize((width, height), Image.BICUBIC).save(root / image_id, quality=90)
        for decode in ("cpu", "gpu"):
            views = DeviceJpegViews(encoder.preprocess, size, encoder.device, root) if decode == "gpu" else None
            job = EmbedJob(ids[:256], lambda i: Image.open(root / i).convert("RGB"), encoder, transform,
                           root / f"warm-{decode}", batch_size, workers, progress=False, decode=views)
            job.run()  # warm-up: workers, cuDNN/cuBLAS and nvJPEG initialisation
            job = EmbedJob(ids, job.reader, encoder, transform, root / f"scratch-{decode}", batch_size, workers,
                           progress=False, decode=views)
            _sync(device)
            start = time.perf_counter()
            job.run()
            _sync(device)
            results[f"decode_{decode}_images_per_s"] = round(count / (time.perf_counter() - start), 1)
            print(f"encode, decode {decode}: {results[f'decode_{decode}_images_per_s']} images/s", flush=True)
        batch = torch.randn(batch_size, 3, size, size, device=device)
        for _ in range(3):
            encoder.encode_image_batch(batch)
        _sync(device)
        start = time.perf_counter()
        for _ in range(20):
            encoder.encode_image_batch(batch)
        _sync(device)
        results["bare_encoder_images_per_s"] = round(20 * batch_size / (time.perf_counter() - start), 1)
    results["model"], results["images"] = f"{model} bf16, {size} px, batch {batch_size}", count
    return results


def train_step_times(classes: int = 1000, steps: int = 30, device: str = "cuda") -> dict:
    """ms per training step of the MDPR head (forward, loss, backward, AdamW), float32 vs bf16 autocast."""
    import torch
    import torch.nn.functional as F

    from pipeline.config.model_params import ModelParams, TrainParams
    from pipeline.model.losses import class_log_prior, mdpr_loss
    from pipeline.model.mdpr import MDPRModel

    gen = torch.Generator().manual_seed(0)
    class_feats = F.normalize(torch.randn(classes, 512, generator=gen), dim=-1)
    library = F.normalize(torch.randn(classes, 5, 512, generator=gen), dim=-1)
    feats = F.normalize(torch.randn(steps * 128, 512, generator=gen), dim=-1).to(device)
    labels = torch.randint(classes, (steps * 128,), generator=gen).to(device)
    log_prior = class_log_prior(torch.ones(classes)).to(device)
    results = {}
    for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        model = MDPRModel(class_feats, library, None, ModelParams(), seed=0).to(device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        times = []
        for step in range(steps):
            batch, target = feats[step * 128:(step + 1) * 128], labels[step * 128:(step + 1) * 128]
            _sync(device)
            start = time.perf_counter()
            with torch.autocast(device.split(":")[0], dtype=dtype or torch.float32, enabled=dtype is not None):
                loss, _ = mdpr_loss(model(batch), target, log_prior, TrainParams(), 1.0, model)  # warm-up done
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            _sync(device)
            times.append(time.perf_counter() - start)
        results[name] = round(1e3 * sorted(times[5:])[len(times[5:]) // 2], 2)  # median after 5 warm-up steps
        print(f"train step at C={classes}, {name}: {results[name]} ms", flush=True)
    return results


def evaluate_throughput(classes: int = 1000, images: int = 50000, device: str = "cuda") -> float:
    """images/s of predict_methods (all methods) on cached test features at C = classes."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from pipeline.config.model_params import ModelParams
    from pipeline.evaluation.methods import predict_methods
    from pipeline.model.losses import class_log_prior
    from pipeline.model.mdpr import MDPRModel

    gen = torch.Generator().manual_seed(0)
    model = MDPRModel(F.normalize(torch.randn(classes, 512, generator=gen), dim=-1),
                      F.normalize(torch.randn(classes, 5, 512, generator=gen), dim=-1), None, ModelParams(), seed=0)
    feats = F.normalize(torch.randn(images, 512, generator=gen), dim=-1).numpy()
    labels = np.arange(images) % classes
    prior = class_log_prior(torch.ones(classes))
    predict_methods(model, feats[:2048], labels[:2048], 0.5, 0.0, prior, 1024, device)  # warm-up
    _sync(device)
    start = time.perf_counter()
    predict_methods(model, feats, labels, 0.5, 0.0, prior, 1024, device)
    _sync(device)
    rate = round(images / (time.perf_counter() - start), 1)
    print(f"evaluate at C={classes}: {rate} images/s", flush=True)
    return rate


def gpu_tests() -> dict:
    """`pytest -m gpu -q` in the repo: its summary line and exit status."""
    out = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"], cwd=REPO,
                         capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    result = {"exit_status": out.returncode, "summary": lines[-1] if lines else out.stderr[-300:]}
    print(f"pytest -m gpu: {result['summary']}", flush=True)
    return result


def to_markdown(summary: dict) -> str:
    encode, train = summary["encode"], summary["train_step_ms"]
    return (f"# GPU benchmark ({summary['gpu']}, torch {summary['torch']})\n\n"
            "Command: `make bench-gpu` (benchmarks/gpu.py)\n\n"
            "| measurement | result |\n|---|---|\n"
            f"| encode {encode['images']} JPEGs, {encode['model']}, decode on CPU ({summary['cpu_workers']} workers) "
            f"| {encode['decode_cpu_images_per_s']} images/s |\n"
            f"| same, `embed.decode: gpu` (torchvision.io.decode_jpeg on the device) "
            f"| {encode['decode_gpu_images_per_s']} images/s |\n"
            f"| bare encoder on preprocessed tensors | {encode['bare_encoder_images_per_s']} images/s |\n"
            f"| train step, C={summary['classes']}, batch 128, fp32 | {train['fp32']} ms |\n"
            f"| train step, C={summary['classes']}, batch 128, bf16 autocast | {train['bf16']} ms |\n"
            f"| evaluate (all methods), C={summary['classes']}, {summary['eval_images']:,} images "
            f"| {summary['evaluate_images_per_s']} images/s |\n"
            f"| `pytest -m gpu` | {summary['pytest_gpu']['summary']} (exit {summary['pytest_gpu']['exit_status']}) |\n")


if __name__ == "__main__":
    main()
