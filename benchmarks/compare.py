"""Project defaults vs the official code's choices (`mdpr preset reference`), and every differing choice one at a
time: MDPR (fused) accuracy on val and test, mean ± std over training seeds, on two worlds of cached features.

    .venv/bin/python benchmarks/compare.py [--seeds 0 1 2] [--worlds synthetic features] [--json out.json] [--smoke]

Worlds (built once per run in a temporary folder with the real stages, then `train` and `evaluate` run in-process
for every variant and seed: the code path of `dvc repro`):
- synthetic: the offline demo (params.yaml as committed: synthetic-lt, 20 classes, 200 to 4 training images,
  10 val and 20 test images per class, the random-init `mdpr-tiny` CLIP, offline descriptions).
- features: a CLIP-like feature import (dataset.name: features): 50 classes in d = 64, 300 to 3 training images
  (exponential profile, IF 100), 10 val and 30 test images per class; image features are noisy copies of a unit
  class centre (so classes overlap), class-name embeddings are confused (each mixes its own centre with another
  class's: zero-shot is weak), and the 5 descriptions of a class lie near its centre (they carry what the names
  lack). Its library.h5 features and prior are replaced by these descriptions after `embed-library`, since no real
  text encoder exists offline, and its raw description norms by draws uniform in [8, 12].
- routing: the two-mode world of tests/helpers/worlds.py (`two_mode_world`: 40 classes in d = 64, 60 to 3 training
  images, 10 val and 20 test per class; each class has two visual modes and descriptions 0 and 1 lie near them,
  2 to 4 are unrelated; weak class-name embeddings; raw description norms in [8, 12]): routing must matter there.
Variants: `project defaults` (params.yaml), `reference` (the preset), and each key where the two differ, flipped
from the project default to the official value alone (lr_schedule with lr_min, router_scale with
router_scale_learned; keys of switched-off losses skipped); then the router's own options (EXTRA): the `mean`
ablation and other initial attention scales. A variant a world cannot run (raw keys where library.h5 has no norms)
is shown as "-". The seed is train.seed (init, shuffling, dropout); the data stay fixed. std is the sample std
(n - 1). Beside accuracy: the val routing entropy (H / log V of the true class, 1 = flat), and per world the
paired difference attention - mean in val top-1 (the defaults against `model.router: mean`, seed by seed).
Last line: `SUMMARY compare: <world>: defaults <val top-1> vs reference <val top-1> (val top-1, %); ...`.
--smoke: one seed, the first two variants, a 4-class synthetic world and one training epoch (SMOKE_SIZES).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._smoke import parse_args
from pipeline.config.params import defaults
from pipeline.config.presets import load_preset
from pipeline.core import paths
from pipeline.core.errors import UserError
from stages import confusion, embed_classes, embed_images, embed_library, evaluate, library, prepare, train
from tests.helpers.worlds import (
    FEATURES_CLIP,
    FEATURES_DATASET,
    build_import_world,
    inside,
    two_mode_world,
    write_params,
)

GROUPS = ("top1", "many", "medium", "few")
TOGETHER = {("train", "lr_min"): ("train", "lr_schedule"),   # flipped with the key it belongs to
            ("model", "router_scale_learned"): ("model", "router_scale")}
MEAN = "`model.router: mean`"
EXTRA = {MEAN: {"model": {"router": "mean"}}, "`model.router_scale: 100`": {"model": {"router_scale": 100.0}},
         "`model.router_scale: 1000`": {"model": {"router_scale": 1000.0}}}
"""The router's options beyond the official ones: the ablation and other initial attention scales."""
SMOKE = {"seeds": [0], "max_variants": 2, "sizes": "smoke"}  # --smoke
SMOKE_SIZES = {"dataset": {"num_classes": 4, "n_max": 20, "imbalance_factor": 5.0, "val_per_class": 2,
                           "test_per_class": 3, "image_size": 32}, "train": {"epochs": 1}}
SIZES: dict = {}  # params layered over the defaults in every world (main: SMOKE_SIZES with --smoke)
SWITCHES = {"pa_pairs": "lambda_pa", "ka_dim": "lambda_ka", "ka_temperature": "lambda_ka"}  # loss key -> its weight


def variants() -> dict[str, dict]:
    """Name -> params overrides, every one a complete statement over params.yaml."""
    reference, base = load_preset("reference"), defaults()
    out = {"project defaults": {}, "reference": reference}
    for section, values in reference.items():
        for key, value in values.items():
            weight = SWITCHES.get(key)
            if base[section][key] == value or (section, key) in TOGETHER or (
                    weight and base[section][weight] == 0 and reference[section][weight] == 0):
                continue
            override = {section: {key: value}}
            for (other_section, other), owner in TOGETHER.items():
                if owner == (section, key) and base[other_section][other] != reference[other_section][other]:
                    override[other_section][other] = reference[other_section][other]
            out[" + ".join(f"`{s}.{k}: {v}`" for s, kv in override.items() for k, v in kv.items())] = override
    return {**out, **EXTRA}


def sized_defaults() -> dict:
    """params.yaml's values with SIZES layered over them."""
    params = defaults()
    for section, values in SIZES.items():
        params[section] = {**params[section], **values}
    return params


def build_synthetic(root: Path) -> Path:
    world = root / "synthetic"
    world.mkdir()
    write_params(world, base=sized_defaults())
    with inside(world):
        for stage in (prepare, embed_images, embed_classes, confusion, library, embed_library):
            stage.run()
    return world


def clip_like_features(classes=50, dim=64, views=5, n_max=300, imbalance=100.0, val=10, test=30, seed=0):
    """Arrays of the features world (see the module docstring) and its (C, V, d) descriptions."""
    rng = np.random.default_rng(seed)
    unit = lambda x: (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)  # noqa: E731
    centres = unit(rng.standard_normal((classes, dim)))
    counts = [math.floor(n_max * imbalance ** (-i / (classes - 1))) for i in range(classes)]

    def split(per_class):
        labels = np.repeat(np.arange(classes), per_class)
        return unit(centres[labels] + 2.0 * rng.standard_normal((len(labels), dim)) / math.sqrt(dim)), labels

    arrays = {}
    for name, per_class in (("train", counts), ("val", [val] * classes), ("test", [test] * classes)):
        arrays[f"{name}_features"], arrays[f"{name}_labels"] = split(per_class)
    other = np.roll(np.arange(classes), classes // 2)
    arrays["class_features"] = unit(centres + centres[other] + 0.4 * rng.standard_normal((classes, dim)) / 8)
    arrays["class_names"] = np.array([f"class {i:02d}" for i in range(classes)])
    descriptions = unit(centres[:, None] + 0.4 * rng.standard_normal((classes, views, dim)) / math.sqrt(dim))
    return arrays, descriptions


def build_features(root: Path) -> Path:
    arrays, descriptions = clip_like_features()
    norms = np.random.default_rng(1).uniform(8.0, 12.0, descriptions.shape[:2])  # (C, V) for router_keys: raw
    return build_import_world(root / "features", arrays, descriptions, norms, base=sized_defaults())


def build_routing(root: Path) -> Path:
    arrays, descriptions, norms, _modes = two_mode_world()
    return build_import_world(root / "routing", arrays, descriptions, norms, base=sized_defaults())


def run_variant(world: Path, overrides: dict, seed: int) -> dict | None:
    """metrics.json after train + evaluate with `overrides` and train.seed = seed; None when the world refuses
    the variant (one line on stderr)."""
    params = json.loads(json.dumps(overrides))
    for section, values in SIZES.items():  # sizes win over a preset's (e.g. the reference's train.epochs)
        params.setdefault(section, {}).update(values)
    params.setdefault("train", {})["seed"] = seed
    base = json.loads(json.dumps(sized_defaults()))
    if (world / "feats.npz").exists():
        base["dataset"].update(FEATURES_DATASET)
        base["clip"].update(FEATURES_CLIP)
    write_params(world, params, base=base)
    try:
        with inside(world), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            train.run()  # the stages' own tables and per-epoch lines silenced
            evaluate.run()
    except UserError as err:
        print(f"skipped on {world.name}: {err}", file=sys.stderr)
        return None
    return json.loads((world / paths.METRICS).read_text())


def summary(values: list[float], scale: float = 100, digits: int = 1) -> str:
    mean = scale * statistics.mean(values)
    std = scale * statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def table(results: dict[str, list[dict]], seeds: int) -> str:
    header = [f"val {g}" for g in GROUPS] + [f"test {g}" for g in GROUPS] + ["val entropy"]
    lines = [f"| variant (n = {seeds} seeds) | " + " | ".join(header) + " |", "|---" * (len(header) + 1) + "|"]
    for name, runs in results.items():
        cells = [summary([run[split]["mdpr"][g] for run in runs])
                 if runs and all(g in run[split]["mdpr"] for run in runs) else "-"
                 for split in ("val", "test") for g in GROUPS]
        cells.append(summary([run["val"]["routing"]["entropy"] for run in runs], 1, 3) if runs else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    defaults_runs, mean_runs = results.get("project defaults", []), results.get(MEAN, [])
    if defaults_runs and len(mean_runs) == len(defaults_runs):
        gain = [a["val"]["mdpr"]["top1"] - b["val"]["mdpr"]["top1"] for a, b in zip(defaults_runs, mean_runs)]
        lines.append(f"\nattention - mean (project defaults vs {MEAN}), val top-1, paired by seed: "
                     f"{summary(gain)} points")
    return "\n".join(lines)


BUILDERS = {"synthetic": build_synthetic, "features": build_features, "routing": build_routing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--worlds", nargs="+", default=list(BUILDERS), choices=list(BUILDERS))
    parser.add_argument("--variants", nargs="+", help="only these variants (names as in the table)")
    parser.add_argument("--json", type=Path, help="also write every run's metrics here")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--max-variants", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", choices=["smoke"], help=argparse.SUPPRESS)
    args = parse_args(parser, SMOKE)
    SIZES.update(SMOKE_SIZES if args.sizes == "smoke" else {})
    torch.set_num_threads(args.threads)  # tiny models: more threads only oversubscribe a shared machine
    everything, root = {}, Path(tempfile.mkdtemp(prefix="mdpr-compare-"))
    try:
        for name in args.worlds:
            start = time.perf_counter()
            world = BUILDERS[name](root)
            chosen = {v: o for v, o in list(variants().items())[:args.max_variants]
                      if not args.variants or v in args.variants}
            results = {variant: [] for variant in chosen}
            for variant, overrides in chosen.items():
                for seed in args.seeds:
                    metrics = run_variant(world, overrides, seed)
                    if metrics is not None:
                        results[variant].append({"val": metrics["val"], "kept": metrics["kept"],
                                                 "test": {m: metrics[m] for m in ("mdpr", "base", "routing")}})
            everything[name] = results
            print(f"\n### world: {name} ({time.perf_counter() - start:.0f} s); MDPR (fused) accuracy, %\n")
            print(table(results, len(args.seeds)))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(everything, indent=1))
    val_top1 = lambda runs: summary([run["val"]["mdpr"]["top1"] for run in runs])  # noqa: E731
    print("SUMMARY compare: " + "; ".join(f"{world}: defaults {val_top1(results['project defaults'])} vs reference "
                                         f"{val_top1(results['reference'])}" for world, results in everything.items())
          + " (val top-1, %)")


if __name__ == "__main__":
    main()
