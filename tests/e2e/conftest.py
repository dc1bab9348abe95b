"""Session fixtures of the real-DVC tests: one repro'd repo of the project shared by every module that needs it.

    def test_x(built, dvc_environment): repo, first_repro_output = built     # copy it before changing anything

`built` is built once per run, also under pytest-xdist (tests/helpers/once.py): every worker reads the same repo, so
no test runs `dvc` (not even `dvc status`) or writes in it; `copy_repo(built[0], tmp_path / "project")` first.
"""
from __future__ import annotations

import pytest

from tests.helpers.dvc_repo import commit_all, dvc, dvc_env, project_repo
from tests.helpers.once import built_once


@pytest.fixture(scope="session")
def dvc_session_env(tmp_path_factory) -> dict[str, str]:
    """DVC subprocess environment of this session (tests/helpers/dvc_repo.py: dvc_env)."""
    return dvc_env(tmp_path_factory.mktemp("dvc_home"))


@pytest.fixture(scope="module")
def dvc_environment(dvc_session_env):
    """That environment in os.environ for one module's tests (so every `dvc`/`git`/`mdpr` subprocess gets it)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in dvc_session_env.items():
            patch.setenv(name, value)
        yield dvc_session_env


@pytest.fixture(scope="session")
def built(tmp_path_factory, dvc_session_env):
    """The project's working tree in a fresh git repo, `dvc repro`'d on tiny params and committed; and the output."""
    def build(folder):
        repo = project_repo(folder / "project")
        (folder / "first-repro.log").write_text(dvc(repo, "repro", env=dvc_session_env))
        commit_all(repo, "dvc repro")

    folder = built_once(tmp_path_factory, "dvc", build)
    return folder / "project", (folder / "first-repro.log").read_text()
