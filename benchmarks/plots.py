"""The evaluation plots at two sizes, to look at: the demo's 20 synthetic classes and 1,000 classes of CLIP-like
features (an import through `dataset.name: features`, as benchmarks/compare.py builds it, at ImageNet-LT's size).

    .venv/bin/python benchmarks/plots.py [--out /tmp/mdpr-plots] [--classes 20 1000] [--n-max 100] [--epochs 1]

Runs every stage on each world (default params; over 96 classes: --n-max to 5 training images per class, 5 val and
10 test images per class, --epochs epochs) and prints where the PNGs and the HTML report are. Nothing is timed.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.compare import clip_like_features
from pipeline.config.params import defaults
from pipeline.core import paths
from pipeline.core.atomic import write_text
from pipeline.evaluation.html import collect_inputs, render_html
from stages import confusion, embed_classes, embed_images, embed_library, evaluate, library, prepare, train
from tests.helpers.worlds import inside, write_params

STAGES = (prepare, embed_images, embed_classes, confusion, library, embed_library, train, evaluate)


def build(world: Path, classes: int, n_max: int = 100, epochs: int = 1) -> None:
    """A project folder run through every stage: synthetic-lt for up to 96 classes, else a features import."""
    world.mkdir(parents=True, exist_ok=True)
    overrides = {"runtime": {"device": "cpu", "num_workers": 0}}
    if classes <= 96:
        overrides["dataset"] = {"num_classes": classes}
    else:
        arrays, _ = clip_like_features(classes=classes, n_max=n_max, imbalance=n_max / 5, val=5, test=10)
        np.savez(world / "feats.npz", **arrays)
        overrides["dataset"] = {"name": "features", "root": ".", "features_file": "feats.npz"}  # under the root
        overrides["train"] = {"epochs": epochs, "batch_size": 512}
        overrides["clip"] = {"space_check": "warn"}  # synthetic features: no encoder made them
    write_params(world, overrides, base=defaults())
    with inside(world), contextlib.redirect_stdout(io.StringIO()):
        for stage in STAGES:
            stage.run()
        write_text("report.html", render_html(collect_inputs(Path("params.yaml"))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/mdpr-plots"))
    parser.add_argument("--classes", type=int, nargs="+", default=[20, 1000])
    parser.add_argument("--n-max", type=int, default=100, help="training images of the largest class (features)")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs (features)")
    args = parser.parse_args()
    for classes in args.classes:
        start = time.perf_counter()
        world = args.out / f"c{classes}"
        build(world, classes, args.n_max, args.epochs)
        print(f"C={classes}: {time.perf_counter() - start:.0f} s; plots in {world / paths.PLOTS}, report "
              f"{world / 'report.html'}")


if __name__ == "__main__":
    main()
