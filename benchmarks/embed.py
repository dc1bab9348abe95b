"""Images/s of the embed_images stage code against the bare encoder forward on preloaded tensors.

    .venv/bin/python benchmarks/embed.py [--model ViT-B-32] [--images 256] [--batch-size 64] [--workers 2] [--smoke]

Both sides use the same random-init open_clip model, batch size and device. The bare side times only
`encode_image` on tensors already decoded, resized and normalised in memory; the stage side runs `EmbedJob` as
`mdpr embed-images` does: PNG files on disk decoded and resized by DataLoader workers while the model runs, each
batch saved to the scratch folder. Target: stage >= 0.85 x bare on CPU. Also reports the peak resident memory of
the stage for two dataset sizes (it streams: memory should not grow with the number of images), each measured in a fresh
child process (`embed.py --child COUNT` runs peak_memory_child). Exits 1 when the stage misses the target.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._smoke import parse_args
from pipeline.config.data_params import ClipParams
from pipeline.data import synthetic
from pipeline.features.clip import load_encoder
from pipeline.features.embed import EmbedJob
from pipeline.features.views import ViewTransform


class FileReader:
    """Opens image files relative to a folder (what data.ImageReader does for file datasets)."""

    def __init__(self, root: Path):
        self.root = root

    def __call__(self, image_id: str):
        from PIL import Image

        with Image.open(self.root / image_id) as image:
            return image.convert("RGB")


def make_images(root: Path, count: int, size: int) -> list[str]:
    names = synthetic.class_names(20)
    rows = [("train", f"{k:05d}.png", k % 20) for k in range(count)]
    synthetic.write_images(root, rows, names, size, seed=0)
    return [image_id for _s, image_id, _l in rows]


def time_bare(encoder, tensors: torch.Tensor, batch_size: int) -> float:
    encoder.encode_image_batch(tensors[:batch_size])  # warm-up
    start = time.perf_counter()
    for first in range(0, len(tensors), batch_size):
        encoder.encode_image_batch(tensors[first:first + batch_size])
    return len(tensors) / (time.perf_counter() - start)


def time_stage(encoder, ids: list[str], root: Path, batch_size: int, workers: int, image_size: int) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        job = EmbedJob(ids, FileReader(root), encoder, ViewTransform(encoder.preprocess, image_size),
                       Path(scratch) / "train", batch_size, workers, progress=False)
        encoder.encode_image_batch(torch.zeros(batch_size, 3, image_size, image_size))  # same warm-up as bare
        start = time.perf_counter()
        job.run()
        return len(ids) / (time.perf_counter() - start)


def peak_memory_child(count: int) -> float:
    """Run in a child process (`embed.py --child COUNT`): embed `count` tiny images through EmbedJob, assemble
    images.h5, and return this process's peak RSS in MB."""
    import resource

    from pipeline.features.assemble import assemble

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        ids = make_images(root / "img", count, 32)
        encoder = load_encoder(ClipParams(model="mdpr-tiny"), "cpu")
        job = EmbedJob(ids, FileReader(root / "img"), encoder, ViewTransform(encoder.preprocess, 32), root / "s", 64,
                       0, progress=False)
        job.run()
        assemble({"train": job}, {"train": [0] * len(ids)}, root / "images.h5", {}, "float32")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_memory_mb(count: int) -> float:
    """Peak RSS of a fresh child process that embeds `count` tiny images (peak_memory_child)."""
    out = subprocess.run([sys.executable, __file__, "--child", str(count)], capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"embed benchmark: the peak-memory child ({count} images) failed ({out.returncode}):\n"
                 f"{out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1])


SMOKE = {"model": "mdpr-tiny", "images": 8, "batch_size": 4, "workers": 1, "source_size": 32, "device": "cpu",
         "memory_images": [8]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--source-size", type=int, default=256, help="side of the PNG files on disk")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--memory-images", type=int, nargs="+", default=[400, 1600],
                        help="image counts of the peak-memory children (tiny model, 32 px)")
    parser.add_argument("--child", type=int, metavar="COUNT", help=argparse.SUPPRESS)
    args = parse_args(parser, SMOKE)
    if args.child is not None:
        print(peak_memory_child(args.child))
        return
    encoder = load_encoder(ClipParams(model=args.model, pretrained="none"), args.device)
    image_size = json.loads(encoder.identity["image_size"])[0]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        ids = make_images(root, args.images, args.source_size)
        reader = FileReader(root)
        tensors = torch.stack([encoder.preprocess(reader(i)) for i in ids])  # (N, 3, S, S) preloaded
        bare = time_bare(encoder, tensors, args.batch_size)
        stage = time_stage(encoder, ids, root, args.batch_size, args.workers, image_size)
    print(f"model {args.model} (random init), {args.images} PNG images {args.source_size}px -> {image_size}px, "
          f"batch {args.batch_size}, device {encoder.device}, torch threads {torch.get_num_threads()}, "
          f"workers {args.workers}")
    print(f"bare encoder on preloaded tensors: {bare:8.1f} images/s")
    print(f"embed_images stage code (EmbedJob): {stage:8.1f} images/s")
    peaks = {count: peak_memory_mb(count) for count in args.memory_images}  # one fresh child per count
    print("peak RSS, tiny model: " + ", ".join(f"{count} images {mb:.0f} MB" for count, mb in peaks.items()))
    ratio, small, large = stage / bare, peaks[min(peaks)], peaks[max(peaks)]
    verdict = "the 0.85 target not checked (smoke run)" if args.smoke else \
        f"{'meets' if ratio >= 0.85 else 'MISSES'} the 0.85 target"
    print(f"SUMMARY embed: stage {stage:.1f} img/s = {ratio:.2f} x bare encoder ({bare:.1f} img/s); {verdict}; "
          f"peak RSS {small:.0f} -> {large:.0f} MB for {max(peaks) / min(peaks):.0f}x the images")
    if ratio < 0.85 and not args.smoke:
        sys.exit(1)


if __name__ == "__main__":
    main()
