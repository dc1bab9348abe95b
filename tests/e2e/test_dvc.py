"""Real DVC end to end: `dvc repro`, what reruns after each params or data change, metrics and plots, a failed LLM
stage rerun.

    .venv/bin/python -m pytest tests/e2e/test_dvc.py -q          # about 3 minutes on 2 cores

A temporary git repo is made from the current working tree of the project (tracked + untracked-not-ignored files,
without artifacts and dvc.lock) with TINY_PARAMS values over the full params.yaml, and `dvc repro`'d once per session
(tests/e2e/conftest.py, tests/helpers/dvc_repo.py). Every scenario that changes something runs in a copy of that
repo. Remotes, clones, the run-cache and `dvc exp push/pull` are in tests/e2e/test_team_sharing.py.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from tests.helpers.dvc_repo import STAGES, VENV_BIN, copy_repo, dvc, dvc_status, git, ran, run, set_param
from tests.helpers.fake_llm import FakeLLM
from tests.helpers.imports import import_closure
from tests.helpers.worlds import REPO

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("dvc_environment")]

KEY_ENV = "MDPR_DVC_TEST_KEY"


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


@pytest.fixture
def project(tmp_path, built) -> Path:
    """A private copy of the repro'd, committed repo."""
    return copy_repo(built[0], tmp_path / "project")


def test_first_repro_runs_every_stage_and_a_second_runs_none(built, project):
    repo, first = project, built[1]   # the second repro in a copy: `built` is shared by every worker, read-only
    assert ran(first) == STAGES
    second = dvc(repo, "repro")
    assert ran(second) == set() and "is cached" not in second
    assert dvc_status(repo) == {}
    assert git(repo, "status", "--porcelain") == ""  # the second repro rewrote nothing, dvc.lock included


# Covered where a scenario already runs it (one repro fewer each): train.lr 0.003 -> train and evaluate by `dvc exp
# run -S train.lr=0.003` in tests/e2e/test_team_sharing.py, and switching the library to the LLM -> library,
# embed_library, train and evaluate, never an embedding of images, by teammate A's `dvc repro` there.
@pytest.mark.parametrize("section, key, value, expected", [
    ("model", "dropout", 0.1, {"train", "evaluate"}),
    ("evaluate", "fusion_weight", 0.3, {"train", "evaluate"}),  # train keeps its epoch with this fusion weight
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


def test_reference_preset_then_repro_trains_the_official_choices(project):
    run([str(VENV_BIN / "mdpr"), "preset", "reference"], project)
    output = dvc(project, "repro")
    assert ran(output) == {"train", "evaluate"}, output
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert (params["train"]["base_loss"], params["train"]["sem_warmup"], params["model"]["router_init"]) == (
        "ce", "official", "pytorch")
    metrics = json.loads((project / "artifacts/metrics/metrics.json").read_text())
    assert metrics["kept"]["epoch_from"] == "val" and metrics["val"]["mdpr"]["top1"] >= 0


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


def test_a_damaged_output_is_restored_from_the_cache_without_rerunning(project):
    """A prepared file cut on disk: `dvc repro` sees the damaged output and restores it from the DVC cache; nothing
    reruns. (The docs no longer ask for `dvc repro -f -s library` after editing a descriptor file: the file is a
    dependency, test_editing_the_descriptor_file_reruns_library_and_the_run_cache_never_restores_old_text.)"""
    for page in ("README.md", *(f"docs/{p.name}" for p in sorted((REPO / "docs").glob("*.md")))):
        assert "dvc repro -f -s library" not in (REPO / page).read_text(), page
    classes = project / "artifacts/data/classes.json"
    intact = classes.read_text()
    classes.write_text(intact[:200])
    output = dvc(project, "repro")
    assert ran(output) == set() and "'prepare' is cached - skipping run, checking out outputs" in output, output
    assert classes.read_text() == intact and dvc_status(project) == {}


def test_metrics_show(project):
    repo = project
    metrics = json.loads(dvc(repo, "metrics", "show", "--json").strip().splitlines()[-1])[""]["data"]
    evaluation = metrics["artifacts/metrics/metrics.json"]["data"]
    assert {"zero_shot", "base", "semantic", "mdpr"} <= set(evaluation)
    assert 0 <= evaluation["mdpr"]["top1"] <= evaluation["mdpr"]["top5"] <= 1
    training = metrics["artifacts/model/live/metrics.json"]["data"]
    assert training["kept_epoch"] == evaluation["kept"]["epoch"]      # the kept epoch's numbers, not the last one's
    assert training["val"]["mean_class"] == evaluation["kept"]["val_mean_class"]
    table = dvc(repo, "metrics", "show")
    assert "artifacts/metrics/metrics.json" in table and "mdpr.top1" in table and "loss.total" in table
    assert git(repo, "status", "--porcelain") == ""


def repro_fails(repo: Path, *targets: str, env: dict | None = None) -> str:
    """`dvc repro` that must fail (a stage exits 2); its output."""
    result = subprocess.run([str(VENV_BIN / "dvc"), "repro", *targets], cwd=repo, capture_output=True, text=True,
                            timeout=600, env={**os.environ, "PYTHONPATH": str(repo), **(env or {})})
    assert result.returncode != 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def draw_class(folder: Path, count: int, shade: int) -> None:
    folder.mkdir(parents=True)
    for k in range(count):
        Image.new("RGB", (32, 32), (shade, 8 * k, 40)).save(folder / f"{k}.png")


def class_names(repo: Path) -> list[str]:
    return json.loads((repo / "artifacts/data/classes.json").read_text())["names"]


def test_a_folder_dataset_is_a_dependency_and_a_deleted_bad_image_unblocks_the_pipeline(project):
    root = project / "data/raw/shapes"
    for k, name in enumerate(("red_disc", "blue_bar", "green_ring")):
        draw_class(root / name, 4, 60 * k)
    set_param(project, "dataset", "name", "folder")
    set_param(project, "dataset", "root", "data/raw/shapes")
    assert ran(dvc(project, "repro", "embed_images")) == {"prepare", "embed_images"}
    assert class_names(project) == ["blue bar", "green ring", "red disc"]
    Image.new("RGB", (32, 32), (1, 2, 3)).save(root / "red_disc/0.png")  # same name, new pixels: to re-embed
    assert "data/raw/shapes" in dvc(project, "status", "embed_images")
    draw_class(root / "yellow_star", 4, 250)  # a new class folder, and a zero-byte image the stage will name
    (root / "blue_bar/zero.png").touch()
    assert "data/raw/shapes" in dvc(project, "status", "prepare")
    assert "blue_bar/zero.png" in repro_fails(project, "embed_images")
    assert class_names(project) == ["blue bar", "green ring", "red disc", "yellow star"]  # prepare reran
    (root / "blue_bar/zero.png").unlink()  # deleted as told: the next repro succeeds
    assert ran(dvc(project, "repro", "embed_images")) == {"prepare", "embed_images"}
    assert "zero.png" not in (project / "artifacts/data/manifest.csv").read_text()
    with h5py.File(project / "artifacts/features/images.h5") as handle:
        assert handle["train/labels"][()].max() == 3
    assert not dvc_status(project).keys() & {"prepare", "embed_images"}


def test_rewriting_a_features_file_reruns_prepare(project):
    feats = project / "data/raw/feats.npz"

    def write_features(names: list[str]) -> None:
        rng = np.random.default_rng(len(names))
        labels = np.repeat(np.arange(len(names)), 3)
        np.savez(feats, class_names=np.array(names), **{f"{split}_{key}": value for split in ("train", "val", "test")
                 for key, value in (("features", rng.normal(size=(len(labels), 64)).astype(np.float32)),
                                    ("labels", labels))})

    write_features(["cat", "dog"])
    set_param(project, "dataset", "name", "features")
    set_param(project, "dataset", "features_file", "data/raw/feats.npz")
    assert ran(dvc(project, "repro", "embed_images")) == {"prepare", "embed_images"}
    write_features(["cat", "dog", "fox"])  # rewritten in place, same path, same params
    assert "data/raw" in dvc(project, "status", "prepare")
    assert ran(dvc(project, "repro", "embed_images")) == {"prepare", "embed_images"}
    assert class_names(project) == ["cat", "dog", "fox"]
    with h5py.File(project / "artifacts/features/images.h5") as handle:
        assert handle["train/labels"][()].max() == 2


ENCODER_STAGES = {"embed_images", "embed_classes", "embed_library", "train", "evaluate"}


def test_editing_the_descriptor_file_reruns_library_and_the_run_cache_never_restores_old_text(project):
    """library.file is a dependency (`${library.file}`): an edit shows in `dvc status`, and per_dimension 2 -> 1 ->
    edit -> 2 reruns library with the edited text (when the file was no dependency, DVC printed "Stage 'library' is
    cached - skipping run" and restored the text of the first run). A file added to data/checkpoints, where a local
    clip.pretrained lies, shows every stage that loads the encoder changed."""
    names = class_names(project)
    descriptors = project / "data/descriptors/descriptions.json"

    def write(tag: str) -> None:
        descriptors.write_text(json.dumps({name: [f"A {tag} look at the {name}, number {k}." for k in range(10)]
                                           for name in names}))

    def texts() -> list[str]:
        lines = (project / "artifacts/library/library.jsonl").read_text().splitlines()
        return [json.loads(line)["text"] for line in lines]

    write("first")
    for key, value in (("file", "data/descriptors/descriptions.json"), ("per_dimension", 2)):
        set_param(project, "library", key, value)
    set_param(project, "llm", "backend", "file")
    assert ran(dvc(project, "repro", "library")) == {"library"}
    assert all("first look" in text for text in texts()) and len(texts()) == 10 * len(names)
    set_param(project, "library", "per_dimension", 1)
    assert ran(dvc(project, "repro", "library")) == {"library"}
    write("edited")
    assert "data/descriptors/descriptions.json" in json.dumps(dvc_status(project)["library"])
    set_param(project, "library", "per_dimension", 2)
    output = dvc(project, "repro", "library")
    assert ran(output) == {"library"} and "is cached" not in output, output
    assert all("edited look" in text for text in texts()) and len(texts()) == 10 * len(names)
    (project / "data/checkpoints/weights.pt").write_bytes(b"not read: the folder is hashed")
    assert ENCODER_STAGES <= set(dvc_status(project))


def test_a_failed_llm_run_is_a_failed_stage_and_the_rerun_asks_only_what_is_missing(project, tmp_path):
    with FakeLLM() as server:
        server.policy = lambda request: "500" if request.class_name in ("red circle", "teal cross") else None
        for key, value in {"backend": "openai", "base_url": server.url, "api_key_env": KEY_ENV, "max_retries": 0,
                           "cache_dir": str(tmp_path / "llm-cache")}.items():
            set_param(project, "llm", key, value)
        output = repro_fails(project, "library", env={KEY_ENV: "sk-test"})
        assert "(HTTP 500 10); nothing written" in output
        assert not (project / "artifacts/library/library.jsonl").exists()
        first = server.requests_per_prompt()
        failed = {r.prompt for r in server.chat_requests if r.class_name in ("red circle", "teal cross")}
        server.policy = None
        server.reset()
        output = dvc(project, "repro", "library", env={KEY_ENV: "sk-test"})
        assert ran(output) == {"library"}
        assert set(server.requests_per_prompt()) == failed and len(first) == 30
