"""The iNaturalist 2018 miniature through `dvc repro`: the official annotation format under dataset.root, every
stage run, classes.json with the species names, the taxonomy and the official counts; `mdpr preset inat2018` exists.

    .venv/bin/python -m pytest tests/e2e/test_inat.py -q

Four species (12, 7, 3 and 1 training images, 2 test images each; 48 x 40 JPEGs), the tiny params, one epoch, in
a fresh git + DVC repo: a full `dvc repro` (what the issue asks to see run) and one `mdpr preset` took 596 s
together on 2 cores shared with other sessions' test suites (load average ~15); far less on an idle machine.
"""
from __future__ import annotations

import json

import pytest
import yaml

from tests.helpers.dvc_repo import STAGES, commit_all, dvc, project_repo, ran
from tests.helpers.inat import write_inat
from tests.helpers.worlds import run_mdpr

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("dvc_environment")]


def test_inat_miniature_runs_through_dvc_repro(tmp_path):
    repo = project_repo(tmp_path / "project")
    categories = write_inat(repo / "data/raw/inat2018")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["dataset"].update({"name": "inat2018", "root": "data/raw/inat2018", "val_per_class": 1})
    params["train"]["epochs"] = 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    commit_all(repo, "inat miniature")
    output = dvc(repo, "repro")
    assert ran(output) == STAGES
    assert "2 class(es) too small to give 1 val image(s)" in output
    classes = json.loads((repo / "artifacts/data/classes.json").read_text())
    assert classes["dataset"] == "inat2018" and classes["names"] == [c["name"] for c in categories]
    assert classes["splits"] == {"train": 21, "val": 2, "test": 8}
    assert classes["train_counts_source"] == "train2018.json (before the val split)"
    assert classes["taxonomy"][0].startswith(f"{categories[0]['kingdom']} > {categories[0]['phylum']}")
    assert set(json.loads((repo / "artifacts/metrics/metrics.json").read_text())) >= {"mdpr", "val", "kept"}


def test_preset_inat2018_sets_the_dataset(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text((project_repo(tmp_path / "p") / "params.yaml").read_text())
    result = run_mdpr(["preset", "inat2018", "--params", str(params)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    merged = yaml.safe_load(params.read_text())
    assert merged["dataset"]["name"] == "inat2018" and merged["dataset"]["root"] == "data/raw/inat2018"
    assert merged["clip"]["pretrained"] == "openai" and merged["llm"]["backend"] == "openai"
