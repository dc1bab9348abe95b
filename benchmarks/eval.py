"""`mdpr evaluate` at C = 1000 and C = 8,142: peak memory and images/s for 5,000 to 50,000 test images.

    .venv/bin/python benchmarks/eval.py [--classes 1000] [--sizes 5000 50000] [--code PATH] [--device cpu] [--smoke]
    .venv/bin/python benchmarks/eval.py --classes 1000 8142 --sizes 24426     # iNaturalist 2018's test split

Writes a project directory with the caches an ImageNet-LT (or iNaturalist 2018) run would have (C classes, V = 5
descriptions, d = 512, random unit features, a long-tailed train split of ~43 images per class on average, a
balanced test split) and an untrained head's checkpoint, then runs the evaluate stage in a fresh child process per
(C, test-set size), with the repo's default params (runtime.batch_size 64). Per run it prints the stage's peak
resident memory (ru_maxrss of the child), its wall time and the images/s of the scoring pass (`score_split`;
`predict_methods` in older checkouts: every method, every image).
`--code` runs the stage of another checkout (e.g. the code before a change, exported with `git archive`) on the
same files. Last line: `SUMMARY eval: <peak RSS at the largest size / at the smallest>x memory` (one C), or with
several C, `<peak RSS at the largest C / at the smallest C, largest size>x memory at C=<largest> vs C=<smallest>`.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks._smoke import parse_args

VIEWS, DIM = 5, 512
SMOKE = {"classes": [8], "sizes": [16], "device": "cpu"}  # --smoke: one child



def child(code: Path, project: Path) -> dict:
    """In a fresh process (`eval.py --child CODE PROJECT`): the evaluate stage of checkout `code` run on `project`,
    timed as a whole and in its scoring pass; its peak resident memory."""
    import resource
    import time

    sys.path.insert(0, str(code))  # before anything of the project is imported: `code`'s stages and pipeline
    os.chdir(project)
    import stages.evaluate as stage

    timed = {"scoring_s": 0.0}
    name = "score_split" if hasattr(stage, "score_split") else "predict_methods"  # older checkouts: predict_methods
    scoring = getattr(stage, name)

    def timed_scoring(*args, **kwargs):
        start = time.perf_counter()
        out = scoring(*args, **kwargs)
        timed["scoring_s"] += time.perf_counter() - start
        return out
    setattr(stage, name, timed_scoring)
    start = time.perf_counter()
    stage.run("params.yaml")
    timed["wall_s"] = time.perf_counter() - start
    timed["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return timed


def write_project(root: Path, classes: int, test_images: int, device: str) -> None:
    """Feature caches, classes.json, params.yaml and an untrained checkpoint under `root`."""
    from pipeline.config.model_params import EvaluateParams, ModelParams, TrainParams
    from pipeline.config.params import load_sections
    from pipeline.core import paths
    from pipeline.data import manifest
    from pipeline.features import store
    from pipeline.features.caches import load_features
    from pipeline.model.checkpoint import build_model, save_checkpoint
    from tests.helpers.worlds import inside

    rng = np.random.default_rng(0)

    def unit(*shape):
        feats = rng.standard_normal(shape, dtype=np.float32)
        return feats / np.linalg.norm(feats, axis=-1, keepdims=True)

    names = [f"class {c:04d}" for c in range(classes)]
    counts = [max(1, math.floor(200 * 100 ** (-c / (classes - 1)))) for c in range(classes)]  # ~43 per class
    train_labels = np.repeat(np.arange(classes), counts)
    test_labels = np.arange(test_images) % classes
    rows = [("train", f"t{i}", int(label)) for i, label in enumerate(train_labels)]
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["runtime"]["device"] = device
    with inside(root):
        record = manifest.write_classes(paths.CLASSES, manifest.classes_record(names, rows, "features"))
        attrs = {"model": "ViT-B-16", "pretrained": "openai", "class_hash": record["class_hash"],
                 "num_classes": classes, "dataset": "features", "test_views": "none"}
        splits = {"train": train_labels, "test": test_labels}
        store.write_h5(paths.IMAGES_H5, {split: {"features": unit(len(labels), DIM), "labels": labels,
                                                 "ids": np.array([f"{split}{i}" for i in range(len(labels))],
                                                                 dtype=object)}
                                         for split, labels in splits.items()}, attrs)
        class_feats, library = unit(classes, DIM), unit(classes, VIEWS, DIM)
        store.write_h5(paths.CLASSES_H5, {"": {"features": class_feats, "names": np.array(names, dtype=object)}},
                       attrs)
        dimensions = ["general_appearance", "fine_grained_appearance", "functionality", "context", "differential"]
        store.write_h5(paths.LIBRARY_H5, {"": {"features": library, "mask": np.ones((classes, VIEWS), bool),
                                               "prior": np.einsum("cvd,cd->cv", library, class_feats),
                                               "dimensions": np.array(dimensions, dtype=object)}},
                       {**attrs, "library_sha256": "none"})
        feats = load_features()
        (fusion,) = load_sections(REPO / "params.yaml", EvaluateParams)
        model_params = ModelParams()
        model = build_model(feats, model_params, seed=0)
        kept = {"epoch": 1, "epoch_from": "last epoch (no val split)", "fusion_weight": fusion.fusion_weight,
                "fusion_weight_from": "params", "posthoc_tau": fusion.posthoc_tau, "posthoc_tau_from": "params"}
        save_checkpoint(paths.CHECKPOINT, model.state_dict(), feats, model_params, TrainParams(),
                        [{"epoch": 1, "loss": 0.0}], kept, fusion)
        Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def run_stage(code: Path, project: Path) -> dict:
    """`child(code, project)` in a fresh process (its own peak memory), through `eval.py --child`."""
    out = subprocess.run([sys.executable, __file__, "--child", str(code), str(project)], capture_output=True,
                         text=True)
    if out.returncode:
        sys.exit(f"evaluate failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1].removeprefix("RESULT "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, nargs="+", default=[1000])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("--code", type=Path, default=REPO, help="checkout whose evaluate stage runs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", nargs=2, type=Path, metavar=("CODE", "PROJECT"), help=argparse.SUPPRESS)
    args = parse_args(parser, SMOKE)
    if args.child:
        print("RESULT " + json.dumps(child(*args.child)))
        return
    print(f"evaluate stage of {args.code}: C={args.classes}, V={VIEWS}, d={DIM}, device {args.device}, "
          "runtime.batch_size 64")
    results = {}
    for classes in args.classes:
        for size in args.sizes:
            with tempfile.TemporaryDirectory() as folder:
                write_project(Path(folder), classes, size, args.device)
                results[classes, size] = result = run_stage(args.code.resolve(), Path(folder))
            print(f"C={classes:5d} {size:6d} test images: peak RSS {result['peak_rss_mb']:7.0f} MB, stage "
                  f"{result['wall_s']:6.1f} s, scoring {size / result['scoring_s']:7.1f} images/s", flush=True)
    print(summary_line(results))


def summary_line(results: dict) -> str:
    """Peak RSS ratio: largest size / smallest size (one C), else largest C / smallest C at the largest size."""
    classes, sizes = sorted({c for c, _ in results}), sorted({n for _, n in results})
    if len(classes) == 1:
        small, large = results[classes[0], sizes[0]]["peak_rss_mb"], results[classes[0], sizes[-1]]["peak_rss_mb"]
        return f"SUMMARY eval: {large / small:.2f}x memory"
    small, large = results[classes[0], sizes[-1]]["peak_rss_mb"], results[classes[-1], sizes[-1]]["peak_rss_mb"]
    return f"SUMMARY eval: {large / small:.2f}x memory at C={classes[-1]} vs C={classes[0]}"


if __name__ == "__main__":
    main()
