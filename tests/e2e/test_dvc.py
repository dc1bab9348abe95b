"""Real DVC end to end: `dvc repro`, what reruns after each params change, metrics/plots, remote + clone, `dvc exp`.

    .venv/bin/python -m pytest tests/e2e/test_dvc.py -q          # about 4 minutes on 2 cores

A temporary git repo is made from the current working tree of the project (tracked + untracked-not-ignored files,
without artifacts and dvc.lock) with TINY_PARAMS values over the full params.yaml, and `dvc repro`'d once per module.
Every scenario runs in a copy of that repo. The `dvc` and `mdpr` of this venv run in subprocesses, with
PYTHONPATH on the copy so the stages run the code DVC hashed, not the editable install's.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml

from tests.helpers.fake_llm import FakeLLM
from tests.helpers.imports import import_closure
from tests.helpers.worlds import REPO, TINY_PARAMS, write_params

pytestmark = pytest.mark.slow

VENV_BIN = Path(sys.executable).parent
STAGES = {"prepare", "embed_images", "embed_classes", "confusion", "library", "embed_library", "train", "evaluate"}
KEY_ENV = "MDPR_DVC_TEST_KEY"
GIT_IDENTITY = {"user.name": "mdpr test", "user.email": "mdpr-test@example.invalid", "commit.gpgsign": "false"}


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


def dvc_status(repo: Path) -> dict:
    return json.loads(dvc(repo, "status", "--json").strip().splitlines()[-1])


def git_init(repo: Path) -> None:
    git(repo, "init", "-q")
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


# Modules that cannot change a stage's result (dvc.yaml's header comment); every other module a stage imports,
# directly or through other project modules, function-level imports included, must be one of its deps.
PLUMBING = ("pipeline/core/", "pipeline/config/", "stages/cli.py", "stages/common.py")
SPEED_ONLY_SECTIONS = {"runtime"}


def dvc_stages() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def stage_module(stage: dict) -> str:
    """`mdpr embed-images` -> stages/embed_images.py."""
    return "stages/" + stage["cmd"].split()[1].replace("-", "_") + ".py"


@pytest.mark.parametrize("name", sorted(dvc_stages()))
def test_stage_lists_every_module_it_imports_as_a_dep(name):
    stage = dvc_stages()[name]
    deps = stage.get("deps", [])
    importer, _ = import_closure(stage_module(stage))
    missing = [f"{m} (imported by {importer[m]})" for m in sorted(importer)
               if not m.startswith(PLUMBING) and not m.endswith("__init__.py")
               and not any(m == d or m.startswith(d.rstrip("/") + "/") for d in deps)]
    assert not missing, (f"dvc.yaml stage {name!r} runs code it does not list in deps (editing it would not rerun "
                         f"the stage): {'; '.join(missing)}")


@pytest.mark.parametrize("name", sorted(dvc_stages()))
def test_stage_reads_exactly_the_params_sections_it_declares(name):
    from pipeline.config.params import SECTIONS

    stage = dvc_stages()[name]
    _, classes = import_closure(stage_module(stage))
    read = {section for section, cls in SECTIONS.items() if cls.__name__ in classes} - SPEED_ONLY_SECTIONS
    declared = {str(entry).split(".")[0] for entry in stage.get("params", [])}
    assert read == declared, f"stage {name!r} reads sections {sorted(read)} but dvc.yaml declares {sorted(declared)}"


@pytest.fixture(scope="module")
def dvc_environment(tmp_path_factory):
    """This venv's dvc and mdpr first on PATH; DVC's state db and configs under tmp, not /var/tmp or ~."""
    home = tmp_path_factory.mktemp("dvc_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        for name, value in {"DVC_NO_ANALYTICS": "1", "DVC_STUDIO_OFFLINE": "1", "GIT_TERMINAL_PROMPT": "0",
                            "DVC_SITE_CACHE_DIR": str(home / "site"), "DVC_GLOBAL_CONFIG_DIR": str(home / "global"),
                            "DVC_SYSTEM_CONFIG_DIR": str(home / "system")}.items():
            patch.setenv(name, value)
        yield


@pytest.fixture(scope="module")
def built(tmp_path_factory, dvc_environment) -> tuple[Path, str]:
    """The project's working tree in a fresh git repo, `dvc repro`'d on tiny params and committed; and the output."""
    repo = tmp_path_factory.mktemp("dvc") / "project"
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z"], check=True,
                           capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, files):
        if name.startswith("artifacts/") or name == "dvc.lock" or not (REPO / name).is_file():
            continue  # outputs come from this repro; a file deleted but still tracked is skipped
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, repo / name)
    write_params(repo, TINY_PARAMS, base=yaml.safe_load((REPO / "params.yaml").read_text()))
    git_init(repo)
    commit_all(repo, "project")
    output = dvc(repo, "repro")
    commit_all(repo, "dvc repro")
    return repo, output


@pytest.fixture
def project(tmp_path, built) -> Path:
    """A private copy of the repro'd, committed repo."""
    return copy_repo(built[0], tmp_path / "project")


def test_first_repro_runs_every_stage_and_a_second_runs_none(built):
    repo, first = built
    assert ran(first) == STAGES
    second = dvc(repo, "repro")
    assert ran(second) == set() and "is cached" not in second
    assert dvc_status(repo) == {}
    assert git(repo, "status", "--porcelain") == ""  # the second repro rewrote nothing, dvc.lock included


@pytest.mark.parametrize("section, key, value, expected", [
    ("train", "lr", 0.003, {"train", "evaluate"}),
    ("model", "dropout", 0.1, {"train", "evaluate"}),
    ("evaluate", "fusion_weight", 0.3, {"evaluate"}),
    # The offline backend ignores the temperature: library reruns and writes the same bytes, so nothing below it does.
    ("llm", "temperature", 0.7, {"library"}),
    ("runtime", "batch_size", 5, set()),
], ids=lambda v: str(v) if not isinstance(v, set) else None)
def test_a_params_change_reruns_only_the_stages_it_affects(project, section, key, value, expected):
    set_param(project, section, key, value)
    output = dvc(project, "repro")
    assert ran(output) == expected, output
    assert dvc_status(project) == {}


def test_coop_base_reruns_train_and_evaluate_only_and_reports_every_method(project):
    set_param(project, "model", "base", "coop")
    output = dvc(project, "repro")
    assert ran(output) == {"train", "evaluate"}, output
    metrics = json.loads((project / "artifacts/metrics/metrics.json").read_text())
    assert {"zero_shot", "zero_shot_library", "base", "semantic", "mdpr"} <= set(metrics)
    assert "prompts.ctx" in torch.load(project / "artifacts/model/model.pt", weights_only=True)["state_dict"]
    assert dvc_status(project) == {}


def test_llm_answers_rerun_library_and_everything_below_but_no_embedding_of_images(project, tmp_path):
    with FakeLLM() as server:
        for key, value in {"backend": "openai", "base_url": server.url, "api_key_env": KEY_ENV,
                           "cache_dir": str(tmp_path / "llm-cache")}.items():
            set_param(project, "llm", key, value)
        output = dvc(project, "repro", env={KEY_ENV: "sk-test"})
        assert server.chat_requests
    assert ran(output) == {"library", "embed_library", "train", "evaluate"}, output
    records = [json.loads(line) for line in (project / "artifacts/library/library.jsonl").read_text().splitlines()]
    assert {r["source"] for r in records} == {"llm"}


def test_runtime_batch_size_changes_features_only_by_float_rounding(project, built):
    """A forced re-embedding with another batch size gives the same features up to float32 rounding.

    Not byte-identical (batched matmuls round differently: max |diff| ~1e-7), so a forced rerun after changing
    runtime.batch_size gives images.h5 a new md5 and DVC then reruns what is below it: safe, never stale.
    """
    set_param(project, "runtime", "batch_size", 5)
    assert ran(dvc(project, "repro", "--force", "--single-item", "embed_images")) == {"embed_images"}
    with h5py.File(project / "artifacts/features/images.h5") as new, \
            h5py.File(built[0] / "artifacts/features/images.h5") as old:
        assert list(new) == list(old)
        for split in old:
            np.testing.assert_array_equal(new[split]["ids"][()], old[split]["ids"][()])
            np.testing.assert_allclose(new[split]["features"][()], old[split]["features"][()], rtol=0, atol=1e-5)


def test_metrics_and_plots_show(built, tmp_path):
    repo = built[0]
    metrics = json.loads(dvc(repo, "metrics", "show", "--json").strip().splitlines()[-1])[""]["data"]
    evaluation = metrics["artifacts/metrics/metrics.json"]["data"]
    assert {"zero_shot", "base", "semantic", "mdpr"} <= set(evaluation)
    assert 0 <= evaluation["mdpr"]["top1"] <= 1
    assert "val_mean_class" in metrics["artifacts/model/live/metrics.json"]["data"]
    table = dvc(repo, "metrics", "show")
    assert "artifacts/metrics/metrics.json" in table and "mdpr.top1" in table
    plots = json.loads(dvc(repo, "plots", "show", "--json", "-o", str(tmp_path / "plots")))
    assert "errors" not in plots
    assert {"artifacts/model/live/plots/metrics/loss.tsv", "artifacts/metrics/plots/accuracy_vs_frequency.png",
            "artifacts/metrics/plots/routing_by_dimension.png"} <= set(plots["data"])
    assert git(repo, "status", "--porcelain") == ""


@pytest.fixture(scope="module")
def team_clone(built, tmp_path_factory) -> Path:
    """A teammate's clone: the author pushes to a local-directory remote, the teammate clones and `dvc pull`s."""
    base = tmp_path_factory.mktemp("team")
    author = copy_repo(built[0], base / "author")
    dvc(author, "remote", "add", "-d", "teamstore", str(base / "store"))
    commit_all(author, "add the team's DVC remote")
    pushed = dvc(author, "push")
    assert re.search(r"\d+ files? pushed", pushed), pushed
    clone = base / "clone"
    run(["git", "clone", "-q", str(author), str(clone)], base)
    for key, value in GIT_IDENTITY.items():
        git(clone, "config", key, value)
    dvc(clone, "pull")
    return clone


def test_a_pulled_clone_is_up_to_date_and_recomputes_nothing(team_clone):
    assert dvc_status(team_clone) == {}
    assert json.loads(dvc(team_clone, "status", "--cloud", "--json").strip().splitlines()[-1]) == {}
    output = dvc(team_clone, "repro")
    assert ran(output) == set() and "is cached" not in output, output
    assert git(team_clone, "status", "--porcelain") == ""


def test_exp_run_with_a_train_override_runs_train_and_evaluate_only(team_clone, tmp_path):
    clone = copy_repo(team_clone, tmp_path / "clone")
    output = dvc(clone, "exp", "run", "-S", "train.lr=0.002")
    assert ran(output) == {"train", "evaluate"}, output
    assert yaml.safe_load((clone / "params.yaml").read_text())["train"]["lr"] == 0.002
    experiments = dvc(clone, "exp", "list", "--name-only").split()
    assert len(experiments) == 1, experiments
