"""From a preset to the first real run, as a new user meets it on a fresh clone with no data, weights or key.

    .venv/bin/python -m pytest tests/e2e/test_first_run.py -q     # about 1.5 minutes on 2 cores

Each test copies one fresh project (the working tree as a new git repo), applies a dataset preset and runs the real
`dvc repro` or `mdpr check`, on a machine made offline for the run: an empty Hugging Face cache with HF_HUB_OFFLINE,
HTTPS through a refused local proxy (the CIFAR download host), no OPENAI_API_KEY. Each run starts DVC and `mdpr
prepare` (torch, open_clip imports): 7 to 25 s apiece here (CIFAR also tries its download), so the presets are three
and the check one run.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers.dvc_repo import VENV_BIN, copy_repo, project_repo, ran

REFUSED_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens, so every connection is refused at once


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """The project's working tree as a fresh git repo (tiny params, as committed otherwise)."""
    return project_repo(tmp_path_factory.mktemp("first_run") / "project")


@pytest.fixture
def clone(fresh, tmp_path) -> Path:
    return copy_repo(fresh, tmp_path / "project")


def offline_run(args: list[str], repo: Path, dvc_env: dict, home: Path) -> subprocess.CompletedProcess:
    """`args` in `repo` as on an offline machine with nothing downloaded and no API key."""
    env = {name: value for name, value in os.environ.items() if name != "OPENAI_API_KEY"}
    env.update(dvc_env, PYTHONPATH=str(repo), HF_HOME=str(home / "hf"), HF_HUB_OFFLINE="1",
               https_proxy=REFUSED_PROXY, HTTPS_PROXY=REFUSED_PROXY, http_proxy=REFUSED_PROXY,
               HTTP_PROXY=REFUSED_PROXY, no_proxy="", NO_PROXY="")
    return subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, timeout=600)


def apply_preset(repo: Path, name: str, dvc_env: dict, home: Path) -> str:
    result = offline_run([str(VENV_BIN / "mdpr"), "preset", name], repo, dvc_env, home)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("preset, fragments", [
    ("imagenet-lt", ["dataset root: data/raw/imagenet holds none of", "image-net.org",
                     "train list: data/splits/ImageNet_LT_train.txt not found", "classifier-balancing"]),
    ("places-lt", ["dataset root: data/raw/places365 holds none of", "places2.csail.mit.edu"]),
    ("cifar100-lt-if100", ["the CIFAR python archive is not under data/raw", "cifar-100-python.tar.gz",
                           "download from https://www.cs.toronto.edu"]),
])
def test_preset_then_repro_fails_in_prepare_with_one_line_naming_what_is_missing(
        preset, fragments, clone, dvc_session_env, tmp_path):
    shown = apply_preset(clone, preset, dvc_session_env, tmp_path)
    assert "Next:" in shown and "`mdpr check`" in shown
    result = offline_run([str(VENV_BIN / "dvc"), "repro"], clone, dvc_session_env, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and ran(output) == {"prepare"}, output
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    assert all(fragment in errors[0] for fragment in fragments), errors[0]
    assert "failed to run: mdpr prepare, exited with 2" in output  # DVC's own line: the stage ran and refused
    for raw in ("Errno", "No such file or directory", "Traceback"):
        assert raw not in output, output


def test_check_lists_every_missing_input_of_imagenet_lt_in_one_run(clone, dvc_session_env, tmp_path):
    apply_preset(clone, "imagenet-lt", dvc_session_env, tmp_path)
    result = offline_run([str(VENV_BIN / "mdpr"), "check"], clone, dvc_session_env, tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name in ("dataset root", "train list", "CLIP weights", "API key variable"):
        assert any(line.startswith(f"  MISSING  {name} ") for line in lines), result.stdout
    assert any(line.startswith("  ok       val split file ") for line in lines)
    assert any(line.startswith("  ok       free disk ") for line in lines)
    assert "OPENAI_API_KEY (llm.api_key_env) is not set" in result.stdout
    assert "hf download timm/vit_base_patch16_clip_224.openai" in result.stdout
    [error] = result.stderr.splitlines()
    assert error.startswith("error: mdpr check: ") and "dataset root, train list, CLIP weights" in error
    assert "Errno" not in result.stdout + result.stderr


def test_check_passes_on_the_offline_demo_params(clone, dvc_session_env, tmp_path):
    """The tiny demo params need nothing from outside: every input holds, exit 0 (no network asked: --offline)."""
    result = offline_run([str(VENV_BIN / "mdpr"), "check", "--offline"], clone, dvc_session_env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MISSING" not in result.stdout and result.stdout.splitlines()[-1].startswith("mdpr check: all ")
