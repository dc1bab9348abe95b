"""Session fixtures: tiny worlds built once per run (a prepared + embedded synthetic dataset, then a trained one),
private copies per test, the fake LLM server and its key. Helpers live in tests/helpers/.

    def test_reads(trained_world): ...             # the shared world itself: read it, never write into it
    def test_changes(trained_project): ...         # a private copy, already the working directory
    def test_other(tmp_path, embedded_world):      # or copy it yourself (tests/helpers/worlds.py copy_world)
        project = copy_world(embedded_world, tmp_path / "project")

A new session world: a fixture that calls `built_once(tmp_path_factory, "<unique name>", build)`
(tests/helpers/once.py). It is built once for the whole run, also under pytest-xdist (`-n 2`, as `make test` runs):
the first worker builds it, the others wait and reuse it; so it is read-only for every test. `make test` runs
`--dist loadscope`: all tests of a module run on one worker, so a module-scoped fixture (a DVC experiment queue, a
team's remotes) is built once too, by that worker.
"""
from __future__ import annotations

import os

import pytest

from tests.helpers.once import built_once
from tests.helpers.worlds import LLM_KEY_ENV, LLM_SECRET, copy_world, inside, write_params

DVC_WORLD_BUILDER = "tests/e2e/test_dvc.py"
"""The module that starts first on one worker and builds the session's repro'd DVC repo (`built`, ~30 s)."""


def pytest_collection_modifyitems(config, items):
    """The order in which pytest-xdist hands out modules (`make test`: --dist loadscope --no-loadscope-reorder): the
    DVC-world builder first, then the end-to-end modules that do not need its repo (the other worker runs them
    meanwhile instead of waiting for the build), then the other modules that need it, then the unit tier (many short
    modules: they even out the two workers at the end). Within a group, and within each module, the order is kept."""
    users = {item.nodeid.split("::")[0] for item in items if "built" in item.fixturenames}

    def group(item) -> int:
        module = item.nodeid.split("::")[0]
        if module == DVC_WORLD_BUILDER:
            return 0
        if module.startswith("tests/unit/"):
            return 3
        return 2 if module in users else 1
    items.sort(key=group)  # stable


def pytest_configure(config):
    """Under pytest-xdist, one OpenMP thread per worker and its subprocesses (unless OMP_NUM_THREADS is set): two
    workers on two cores with torch's default of one thread per core would put four busy threads on two cores."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def embedded_world(tmp_path_factory):
    """A project folder after prepare, embed-images, embed-classes and confusion on TINY_PARAMS (read-only use)."""
    from stages import confusion, embed_classes, embed_images, prepare

    def build(world):
        write_params(world)
        with inside(world):
            for stage in (prepare, embed_images, embed_classes, confusion):
                stage.run()
    return built_once(tmp_path_factory, "embedded_world", build)


@pytest.fixture(scope="session")
def trained_world(tmp_path_factory, embedded_world):
    """The embedded world carried through library (offline), embed-library, train and evaluate (read-only use)."""
    from stages import embed_library, evaluate, library, train

    def build(folder):
        with inside(copy_world(embedded_world, folder / "project")):
            for stage in (library, embed_library, train, evaluate):
                stage.run()
    return built_once(tmp_path_factory, "trained_world", build) / "project"


@pytest.fixture
def trained_project(tmp_path, trained_world, monkeypatch):
    """A private copy of the trained world as the working directory."""
    monkeypatch.chdir(copy_world(trained_world, tmp_path / "project"))
    return tmp_path / "project"


@pytest.fixture
def project(tmp_path, embedded_world, monkeypatch):
    """A private copy of the embedded world as the working directory."""
    monkeypatch.chdir(copy_world(embedded_world, tmp_path / "project"))
    return tmp_path / "project"


@pytest.fixture
def llm_key(monkeypatch):
    """The fake API key in the environment, and fast retries (backoff base 10 ms)."""
    from pipeline.library import llm

    monkeypatch.setenv(LLM_KEY_ENV, LLM_SECRET)
    monkeypatch.setattr(llm, "BACKOFF_BASE_S", 0.01)


@pytest.fixture
def server():
    """A real fake OpenAI-compatible server on 127.0.0.1 (tests/helpers/fake_llm.py)."""
    from tests.helpers.fake_llm import FakeLLM

    with FakeLLM() as fake:
        yield fake
