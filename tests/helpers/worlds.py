"""Tiny worlds for the tests: small params, a project directory to run stages in, the real `mdpr` in a subprocess.

    write_params(tmp_path, {"train": {"epochs": 1}})     # a complete params.yaml: defaults, TINY_PARAMS, overrides
    with inside(project): prepare.run()                  # stages use project-relative paths
    run_mdpr(["report"], cwd=project)                    # the console script, as a user runs it
    mdpr_in_process(["plan", "--json"], cwd=project)     # the same command in this process (no start-up per call)

Everything is real: the open_clip `mdpr-tiny` architecture with random weights, PNG files on disk, HDF5 caches.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
LLM_KEY_ENV = "MDPR_TEST_LLM_KEY"          # the tests' API key variable (llm.api_key_env)
LLM_SECRET = "sk-test-SECRET-1234"         # a recognisable key that must never be written anywhere

# Small enough for 2 cores, large enough to have many/medium/few classes with the default thresholds.
TINY_PARAMS = {
    "dataset": {"name": "synthetic-lt", "num_classes": 6, "n_max": 120, "imbalance_factor": 12.0,
                "val_per_class": 3, "test_per_class": 5, "image_size": 32},
    "clip": {"model": "mdpr-tiny", "pretrained": "none", "templates": "simple"},
    "runtime": {"device": "cpu", "batch_size": 16, "num_workers": 0},
    "train": {"epochs": 3, "batch_size": 32},
    "model": {"heads": 4},
}


def write_params(directory: Path, overrides: dict | None = None, base: dict | None = None) -> Path:
    """A complete params.yaml in `directory` (every section, as DVC needs): the repo's defaults, then TINY_PARAMS
    (or `base`), then the per-section `overrides`."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for layer in (base or TINY_PARAMS, overrides or {}):
        for section, values in layer.items():
            params.setdefault(section, {}).update(values)
    path = Path(directory) / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@contextlib.contextmanager
def inside(directory: Path):
    """Run stage code with `directory` as the working directory (stages use project-relative paths)."""
    previous = os.getcwd()
    os.chdir(directory)
    try:
        yield Path(directory)
    finally:
        os.chdir(previous)


def copy_world(world: Path, target: Path) -> Path:
    """A private copy of a session world at `target`."""
    shutil.copytree(world, target)
    return target


def run_mdpr(args: list[str], cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """The real `mdpr` console script in a subprocess."""
    mdpr = Path(sys.executable).parent / "mdpr"
    return subprocess.run([str(mdpr), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def mdpr_in_process(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """`mdpr ARGS` run in this process through click's test runner, with `cwd` as the working directory: the same
    command code, exit status, stdout and stderr as `run_mdpr`, but torch and open_clip are imported once per test
    process instead of at every call (2-5 s each). For tests whose subject is what a command does; a test of the
    console script's process itself (exit status and stderr as a shell sees them, start-up) uses `run_mdpr`."""
    from click.testing import CliRunner

    from stages.cli import main

    with inside(cwd):
        result = CliRunner().invoke(main, args, env=env, prog_name="mdpr")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a crash fails the test with its own traceback
    return subprocess.CompletedProcess(["mdpr", *args], result.exit_code, result.stdout, result.stderr)


def openai_params(server, cache_dir, **overrides):
    """LLMParams for the openai backend against `server`, with short timeouts for tests (overrides win)."""
    from pipeline.config.library_params import LLMParams
    from pipeline.config.schema import from_dict

    values = {"backend": "openai", "base_url": server.url, "api_key_env": LLM_KEY_ENV, "timeout_s": 2.0,
              "max_retries": 3, "concurrency": 4, "cache_dir": str(cache_dir), **overrides}
    return from_dict(LLMParams, values)


# A features import (`dataset.name: features`); the import file sits under dataset.root (imports are DVC deps). No
# encoder made these synthetic features, so the embedding-space check only warns.
FEATURES_DATASET = {"name": "features", "root": ".", "features_file": "feats.npz"}
FEATURES_CLIP = {"space_check": "warn"}


def build_import_world(world: Path, arrays: dict, descriptions, norms=None, base: dict | None = None,
                       overrides: dict | None = None) -> Path:
    """A project folder at `world` run through the real stages (prepare to embed-library) on imported features
    `arrays` (the npz keys of the import); since no text encoder knows these synthetic classes, library.h5's
    features, prior (and `norms`, removed when None) are then replaced by `descriptions` (C, V, d) unit rows."""
    import numpy as np

    from pipeline.core import paths
    from pipeline.features import store
    from stages import confusion, embed_classes, embed_images, embed_library, library, prepare

    world.mkdir(parents=True, exist_ok=True)
    np.savez(world / "feats.npz", **arrays)
    write_params(world, {"dataset": FEATURES_DATASET, "clip": FEATURES_CLIP, **(overrides or {})}, base=base)
    with inside(world):
        for stage in (prepare, embed_images, embed_classes, confusion, library, embed_library):
            stage.run()
        groups, attrs = store.read_h5(paths.LIBRARY_H5)
        groups[""]["features"] = descriptions.astype(np.float32)
        groups[""]["prior"] = np.einsum("cvd,cd->cv", descriptions, arrays["class_features"]).astype(np.float32)
        groups[""].pop("norms")
        if norms is not None:
            groups[""]["norms"] = norms.astype(np.float32)
        store.write_h5(paths.LIBRARY_H5, groups, attrs)
    return world


def two_mode_world(classes=40, dim=64, views=5, n_max=60, imbalance=20.0, val=10, test=20, noise=1.0, seed=0):
    """The routing world: where MDPR's routing must matter. Every class has two visual modes A_c, B_c (random unit
    directions in d dimensions); an image is one of its class's modes (chosen at random) plus Gaussian noise of norm
    about `noise`, L2-normalised. Description 0 of a class lies near mode A, description 1 near mode B, descriptions 2
    to V-1 are unrelated random directions; the class-name embedding is weak (mostly another class's modes). Training
    counts are long-tailed (exponential profile, n_max to n_max / imbalance); val and test are balanced. Only a router
    that picks, per image, the description of that image's mode can tell the class by its nearest mode; the uniform
    mean of the descriptions is one prototype per class.

    Returns (arrays, descriptions (C, V, d), norms (C, V), modes): `arrays` are the keys of a features import
    (train/val/test features and labels, class_names, class_features), `norms` raw description norms (uniform in
    [8, 12]) for `model.router_keys: raw`, `modes` {split: (N,) 0 for mode A, 1 for B}: the index of the
    description matching each image."""
    import math

    import numpy as np

    rng = np.random.default_rng(seed)
    unit = lambda x: (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)  # noqa: E731
    centres = unit(rng.standard_normal((classes, 2, dim)))  # (C, 2, d): modes A and B
    counts = [max(1, math.floor(n_max * imbalance ** (-i / (classes - 1)))) for i in range(classes)]
    arrays, modes = {}, {}
    for split, per_class in (("train", counts), ("val", [val] * classes), ("test", [test] * classes)):
        labels = np.repeat(np.arange(classes), per_class)
        modes[split] = rng.integers(0, 2, len(labels))
        noisy = centres[labels, modes[split]] + noise * rng.standard_normal((len(labels), dim)) / math.sqrt(dim)
        arrays[f"{split}_features"], arrays[f"{split}_labels"] = unit(noisy), labels
    other = np.roll(np.arange(classes), classes // 2)
    arrays["class_features"] = unit(0.3 * centres.sum(1) + centres[other].sum(1))  # weak: another class dominates
    arrays["class_names"] = np.array([f"class {i:02d}" for i in range(classes)])
    descriptions = unit(rng.standard_normal((classes, views, dim)))  # (C, V, d): unrelated, except ...
    descriptions[:, :2] = unit(centres + 0.3 * rng.standard_normal((classes, 2, dim)) / math.sqrt(dim))  # ... 0, 1
    norms = rng.uniform(8.0, 12.0, (classes, views)).astype(np.float32)
    return arrays, descriptions, norms, modes
