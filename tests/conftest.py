"""Tiny worlds shared by the tests: small params, a prepared + embedded synthetic dataset, built once per session.

Everything is real: the open_clip `mdpr-tiny` architecture with random weights, PNG files on disk, HDF5 caches.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
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


def run_mdpr(args: list[str], cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """The real `mdpr` console script in a subprocess."""
    mdpr = Path(sys.executable).parent / "mdpr"
    return subprocess.run([str(mdpr), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def embedded_world(tmp_path_factory) -> Path:
    """A project folder after prepare, embed-images, embed-classes and confusion on TINY_PARAMS (read-only use)."""
    from stages import confusion, embed_classes, embed_images, prepare

    world = tmp_path_factory.mktemp("embedded_world")
    write_params(world)
    with inside(world):
        prepare.run()
        embed_images.run()
        embed_classes.run()
        confusion.run()
    return world


@pytest.fixture(scope="session")
def trained_world(tmp_path_factory, embedded_world) -> Path:
    """The embedded world carried through library (offline), embed-library, train and evaluate (read-only use)."""
    from stages import embed_library, evaluate, library, train

    world = tmp_path_factory.mktemp("trained_world") / "project"
    shutil.copytree(embedded_world, world)
    with inside(world):
        library.run()
        embed_library.run()
        train.run()
        evaluate.run()
    return world


def _private_copy(world: Path, tmp_path: Path, monkeypatch) -> Path:
    """Copy a session world into this test's tmp_path and make it the working directory."""
    target = tmp_path / "project"
    shutil.copytree(world, target)
    monkeypatch.chdir(target)
    return target


@pytest.fixture
def trained_project(tmp_path, trained_world, monkeypatch) -> Path:
    """A private copy of the trained world as the working directory."""
    return _private_copy(trained_world, tmp_path, monkeypatch)


@pytest.fixture
def project(tmp_path, embedded_world, monkeypatch) -> Path:
    """A private copy of the embedded world as the working directory."""
    return _private_copy(embedded_world, tmp_path, monkeypatch)


@pytest.fixture
def llm_key(monkeypatch):
    """The fake API key in the environment, and fast retries (backoff base 10 ms)."""
    from pipeline import llm

    monkeypatch.setenv(LLM_KEY_ENV, LLM_SECRET)
    monkeypatch.setattr(llm, "BACKOFF_BASE_S", 0.01)


@pytest.fixture
def server():
    """A real fake OpenAI-compatible server on 127.0.0.1 (tests/fake_llm.py)."""
    from tests.fake_llm import FakeLLM

    with FakeLLM() as fake:
        yield fake


def openai_params(server, cache_dir, **overrides):
    """LLMParams for the openai backend against `server`, with short timeouts for tests (overrides win)."""
    from pipeline.params import LLMParams, from_dict

    values = {"backend": "openai", "base_url": server.url, "api_key_env": LLM_KEY_ENV, "timeout_s": 2.0,
              "max_retries": 3, "concurrency": 4, "cache_dir": str(cache_dir), **overrides}
    return from_dict(LLMParams, values)
