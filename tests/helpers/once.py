"""Session worlds built once per test run, also when pytest-xdist splits the run over several worker processes.

    world = built_once(tmp_path_factory, "embedded_world", build)   # build(folder) fills an empty folder, once

Without xdist (`python -m pytest`), `build` runs once in this session's temp folder. Under xdist (`-n 2`), every
worker is its own session: the first worker to ask builds the folder under a file lock in the run's shared temp
folder, and every other worker waits for it and reuses it. The folder is then read-only for everyone: a test that
changes anything copies it first (tests/helpers/worlds.py `copy_world`, tests/helpers/dvc_repo.py `copy_repo`).
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

DONE = ".built"
"""Marker file next to a finished folder (a build that failed halfway is built again by the next worker)."""


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder `name` after `build(folder)` ran in it, built once for the whole run (every xdist worker)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        folder = tmp_path_factory.mktemp(name, numbered=False)
        build(folder)
        return folder
    shared = tmp_path_factory.getbasetemp().parent  # the run's temp folder: every worker's basetemp is inside it
    folder, done = shared / name, shared / f"{name}{DONE}"
    with FileLock(str(shared / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder
