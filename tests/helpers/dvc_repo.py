"""Real DVC and Git in temporary repos: the project's working tree as a fresh repo, and commands run as a user would.

    repo = project_repo(tmp_path / "project")    # tracked + untracked-not-ignored files, TINY_PARAMS, git init + commit
    output = dvc(repo, "repro")                  # this venv's dvc in a subprocess (fails the test unless it succeeds)
    ran(output) == {"train", "evaluate"}         # stages executed (run-cache restores do not count)

The `dvc` and `mdpr` of this venv run in subprocesses, with PYTHONPATH on the repo so the stages run the code DVC
hashed, not the editable install's. `dvc_env(home)` keeps DVC's state db and configs under `home` (not /var/tmp or
~); the session fixtures in tests/e2e/conftest.py build one repro'd repo for every DVC test module.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers.worlds import REPO, TINY_PARAMS, write_params

VENV_BIN = Path(sys.executable).parent
STAGES = {"prepare", "embed_images", "embed_classes", "confusion", "library", "embed_library", "train", "evaluate"}
GIT_IDENTITY = {"user.name": "mdpr test", "user.email": "mdpr-test@example.invalid", "commit.gpgsign": "false"}


def dvc_env(home: Path) -> dict[str, str]:
    """Environment for DVC subprocesses: this venv first on PATH, no analytics or prompts, state under `home`."""
    return {"PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1",
            "DVC_STUDIO_OFFLINE": "1", "GIT_TERMINAL_PROMPT": "0", "DVC_SITE_CACHE_DIR": str(home / "site"),
            "DVC_GLOBAL_CONFIG_DIR": str(home / "global"), "DVC_SYSTEM_CONFIG_DIR": str(home / "system")}


def run(args: list[str], repo: Path, env: dict | None = None, timeout: int = 600) -> str:
    """Run a command in `repo`; fail the test with its output unless it succeeds; return stdout + stderr."""
    result = subprocess.run(args, cwd=repo, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "PYTHONPATH": str(repo), **(env or {})})
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(args)} failed ({result.returncode}):\n{output}"
    return output


def dvc(repo: Path, *args: str, env: dict | None = None) -> str:
    return run([str(VENV_BIN / "dvc"), *args], repo, env)


def git(repo: Path, *args: str) -> str:
    return run(["git", *args], repo)


def ran(output: str) -> set[str]:
    """Stages `dvc repro` / `dvc exp run` executed (restoring from the run-cache does not count)."""
    return set(re.findall(r"Running stage '([^']+)'", output))


def dvc_status(repo: Path, env: dict | None = None) -> dict:
    return json.loads(dvc(repo, "status", "--json", env=env).strip().splitlines()[-1])


def git_init(repo: Path) -> None:
    git(repo, "init", "-q")
    set_identity(repo)


def set_identity(repo: Path) -> None:
    """The test's git author (commits and `dvc exp` need one; a user has theirs)."""
    for key, value in GIT_IDENTITY.items():
        git(repo, "config", key, value)


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)


def set_param(repo: Path, section: str, key: str, value) -> None:
    """Change one value of params.yaml, keeping every key and their order."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    assert key in params[section], f"{section}.{key} is not in params.yaml"
    params[section][key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def copy_repo(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    return target


def project_repo(repo: Path) -> Path:
    """The project's working tree (tracked + untracked-not-ignored files, without artifacts and dvc.lock) with
    TINY_PARAMS over the full params.yaml, as a fresh git repo with one commit."""
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z"], check=True,
                           capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, files):
        if name.startswith("artifacts/") or name == "dvc.lock" or not (REPO / name).is_file():
            continue  # outputs come from the repro; a file deleted but still tracked is skipped
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, repo / name)
    write_params(repo, TINY_PARAMS, base=yaml.safe_load((REPO / "params.yaml").read_text()))
    git_init(repo)
    commit_all(repo, "project")
    return repo
