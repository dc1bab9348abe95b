"""The evaluation plots at two sizes, to look at: the demo's 20 synthetic classes and 1,000 classes of CLIP-like
features (an import through `dataset.name: features`, as benchmarks/compare.py builds it, at ImageNet-LT's size).

    .venv/bin/python benchmarks/plots.py [--out /tmp/mdpr-plots] [--classes 20 1000] [--n-max 100] [--epochs 1]
                                         [--smoke]

Runs every stage on each world (default params; over 96 classes: --n-max to 5 training images per class, 5 val and
10 test images per class, --epochs epochs) and prints where the PNGs and the HTML report are. Nothing is timed.
Last line: `SUMMARY plots: C=<C>: <n> PNGs and report.html; ...`. With --smoke and no --out, into a temporary
folder that is removed.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._smoke import parse_args
from benchmarks.compare import clip_like_features
from pipeline.config.params import defaults
from pipeline.core import paths
from pipeline.core.atomic import write_text
from pipeline.evaluation.html import collect_inputs, render_html
from stages import confusion, embed_classes, embed_images, embed_library, evaluate, library, prepare, train
from tests.helpers.worlds import inside, write_params

STAGES = (prepare, embed_images, embed_classes, confusion, library, embed_library, train, evaluate)
SMOKE = {"classes": [4, 6], "features_above": 5, "n_max": 6, "synthetic_epochs": 1,  # --smoke
         "synthetic": {"n_max": 20, "imbalance_factor": 5.0, "val_per_class": 2, "test_per_class": 3, "image_size": 32}}


def build(world: Path, classes: int, n_max: int = 100, epochs: int = 1, synthetic: dict | None = None,
          synthetic_epochs: int | None = None, features_above: int = 96) -> None:
    """A project folder run through every stage: synthetic-lt for up to `features_above` classes (`synthetic`: more
    dataset params, `synthetic_epochs`: train.epochs), else a features import."""
    world.mkdir(parents=True, exist_ok=True)
    overrides = {"runtime": {"device": "cpu", "num_workers": 0}}
    if classes <= features_above:
        overrides["dataset"] = {"num_classes": classes, **(synthetic or {})}
        if synthetic_epochs:
            overrides["train"] = {"epochs": synthetic_epochs}
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
    parser.add_argument("--out", type=Path, help="default /tmp/mdpr-plots (--smoke: a temporary folder)")
    parser.add_argument("--classes", type=int, nargs="+", default=[20, 1000])
    parser.add_argument("--n-max", type=int, default=100, help="training images of the largest class (features)")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs (features)")
    parser.add_argument("--synthetic", type=json.loads, default={}, help=argparse.SUPPRESS)
    parser.add_argument("--synthetic-epochs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--features-above", type=int, default=96, help="larger worlds are a features import "
                        "(synthetic-lt names at most 96 classes)")
    args = parse_args(parser, SMOKE)
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or (Path(scratch) if args.smoke else Path("/tmp/mdpr-plots"))
        made = []
        for classes in args.classes:
            start = time.perf_counter()
            world = out / f"c{classes}"
            build(world, classes, args.n_max, args.epochs, args.synthetic, args.synthetic_epochs, args.features_above)
            print(f"C={classes}: {time.perf_counter() - start:.0f} s; plots in {world / paths.PLOTS}, report "
                  f"{world / 'report.html'}")
            made.append(f"C={classes}: {len(list((world / paths.PLOTS).glob('*.png')))} PNGs and report.html")
    print("SUMMARY plots: " + "; ".join(made))


if __name__ == "__main__":
    main()
