"""Every path-valued param is a DVC dependency of every stage that reads it (pipeline/config/path_params.py).

    .venv/bin/python -m pytest tests/unit/test_path_deps.py -q        # static: dvc.yaml, the dataclasses, the code

A stage "reads" section.key when dvc.yaml declares the section for it and a module it runs (its import closure, as
in tests/e2e/test_dvc.py) accesses `.key` or names "key" (getattr-style). The guards that keep folder-covered
values under their folders are exercised here too, one refusal per param.
"""
from __future__ import annotations

import ast
import dataclasses
import types
import typing
from typing import Literal

import numpy as np
import pytest
import yaml
from PIL import Image

from pipeline.config.params import SECTIONS
from pipeline.config.path_params import NOT_INPUTS, NOT_PATHS, PATH_PARAMS
from pipeline.core.errors import UserError
from tests.helpers.imports import REPO, import_closure

STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def string_params() -> set[str]:
    """section.key of every field whose value may be free text (str or Optional[str]; Literal choices are not)."""
    found = set()
    for section, cls in SECTIONS.items():
        for name, hint in typing.get_type_hints(cls).items():
            options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
            if str in options and typing.get_origin(hint) is not Literal:
                found.add(f"{section}.{name}")
    return found & {f"{s}.{f.name}" for s, c in SECTIONS.items() for f in dataclasses.fields(c)}


def names_used(module: str) -> set[str]:
    """Attribute names accessed and string constants in a module."""
    tree = ast.parse((REPO / module).read_text())
    return {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)} | \
        {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def stages_reading(param: str) -> set[str]:
    section, key = param.split(".")
    readers = set()
    for name, stage in STAGES.items():
        if section not in {str(p).split(".")[0] for p in stage.get("params", [])}:
            continue
        closure, _ = import_closure("stages/" + stage["cmd"].split()[1].replace("-", "_") + ".py")
        if any(key in names_used(module) for module in closure):
            readers.add(name)
    return readers


def test_every_string_param_is_declared_a_path_or_not():
    declared = [*PATH_PARAMS, *NOT_INPUTS, *NOT_PATHS]
    assert len(declared) == len(set(declared)), "a param is in two of the tables"
    unknown = string_params() - set(declared)
    assert not unknown, (f"string params {sorted(unknown)} are in none of PATH_PARAMS, NOT_INPUTS, NOT_PATHS "
                         "(pipeline/config/path_params.py): a file they name would not be a DVC dependency")
    assert set(declared) <= string_params()


@pytest.mark.parametrize("param", sorted(PATH_PARAMS))
def test_every_stage_reading_a_path_param_depends_on_what_covers_it(param):
    readers = stages_reading(param)
    assert readers, f"no stage reads {param}? (the reader detection or the table is wrong)"
    missing = {stage: [dep for dep in PATH_PARAMS[param] if dep not in STAGES[stage].get("deps", [])]
               for stage in sorted(readers)}
    missing = {stage: deps for stage, deps in missing.items() if deps}
    assert not missing, f"{param} is read by stages lacking its covering deps in dvc.yaml: {missing}"


def test_the_expected_stages_read_the_path_params():
    """The detection is not vacuous: the stages known to read each file are found."""
    assert stages_reading("library.file") == {"library"}
    assert stages_reading("clip.pretrained") == {"embed_images", "embed_classes", "embed_library", "train",
                                                 "evaluate"}
    assert stages_reading("dataset.train_counts_file") == {"prepare"}


@pytest.mark.parametrize("param", sorted(p for p, deps in PATH_PARAMS.items() if deps == (f"${{{p}}}",)))
def test_an_interpolated_path_param_defaults_to_a_committed_placeholder(param):
    """DVC cannot interpolate null: the default names a folder committed in the repo, in params.yaml too."""
    section, key = param.split(".")
    default = getattr(SECTIONS[section](), key)
    assert default and default == yaml.safe_load((REPO / "params.yaml").read_text())[section][key]
    assert (REPO / default).is_dir() and (REPO / default / "README.md").is_file()


def refuse_dataset_file(tmp_path, key: str) -> None:
    from pipeline.config.data_params import DatasetParams
    from pipeline.data.datasets import build_dataset

    root = tmp_path / "root"
    for name in ("a", "b"):  # a folder dataset of two classes, six images each
        (root / name).mkdir(parents=True)
        for k in range(6):
            Image.new("RGB", (8, 8)).save(root / name / f"{k}.png")
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    name = {"features_file": "features", "train_list": "imagenet-lt", "train_counts_file": "folder",
            "split_file": "folder"}[key]
    value = "../outside.txt" if key == "split_file" else str(outside)
    build_dataset(DatasetParams(name=name, root=str(root), **{key: value}))


def refuse_checkpoint(tmp_path, monkeypatch) -> None:
    from pipeline.config.data_params import ClipParams
    from pipeline.features.clip import encoder_identity

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data/checkpoints").mkdir(parents=True)
    np.save(tmp_path / "weights.npy", np.zeros(1))
    (tmp_path / "weights.pt").write_bytes((tmp_path / "weights.npy").read_bytes())
    encoder_identity(ClipParams(pretrained=str(tmp_path / "weights.pt")))


GUARDS = {"dataset.features_file": lambda tmp, mp: refuse_dataset_file(tmp, "features_file"),
          "dataset.train_list": lambda tmp, mp: refuse_dataset_file(tmp, "train_list"),
          "dataset.train_counts_file": lambda tmp, mp: refuse_dataset_file(tmp, "train_counts_file"),
          "dataset.split_file": lambda tmp, mp: refuse_dataset_file(tmp, "split_file"),
          "clip.pretrained": refuse_checkpoint}


def test_every_folder_covered_param_has_a_guard_test():
    assert set(GUARDS) == {p for p, deps in PATH_PARAMS.items() if deps != (f"${{{p}}}",)}


@pytest.mark.parametrize("param", sorted(GUARDS))
def test_a_file_outside_its_covering_folders_is_refused(param, tmp_path, monkeypatch):
    with pytest.raises(UserError, match="DVC would not see"):
        GUARDS[param](tmp_path, monkeypatch)
