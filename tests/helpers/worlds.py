"""Tiny worlds for the tests: small params, a project directory to run stages in, the real `mdpr` in a subprocess.

    write_params(tmp_path, {"train": {"epochs": 1}})     # a complete params.yaml: defaults, TINY_PARAMS, overrides
    with inside(project): prepare.run()                  # stages use project-relative paths
    run_mdpr(["report"], cwd=project)                    # the console script, as a user runs it

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


def openai_params(server, cache_dir, **overrides):
    """LLMParams for the openai backend against `server`, with short timeouts for tests (overrides win)."""
    from pipeline.config.library_params import LLMParams
    from pipeline.config.schema import from_dict

    values = {"backend": "openai", "base_url": server.url, "api_key_env": LLM_KEY_ENV, "timeout_s": 2.0,
              "max_retries": 3, "concurrency": 4, "cache_dir": str(cache_dir), **overrides}
    return from_dict(LLMParams, values)
