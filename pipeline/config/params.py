"""Typed, strict parameters: one dataclass per section of `params.yaml`, loaded one file read per call.

    evaluate = load_params("params.yaml", EvaluateParams)
    model, train = load_sections("params.yaml", ModelParams, TrainParams)

A stage loads only the sections it declares in `dvc.yaml`, so a key it does not read can never change its output
unseen. Loading fails before any work, with one line naming the section, the key and what is allowed, on an unknown
key, a wrong type or an out-of-range value. The sections themselves live in data_params.py (dataset, clip, embed,
runtime), library_params.py (confusion, llm, library), model_params.py (model, train, evaluate) and plan_params.py
(plan).

The `runtime` section holds speed-only knobs (device, batch size, workers) and `plan` the prices and assumptions of
`mdpr plan`. No stage declares either, so changing them never invalidates an output.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from pipeline.config.data_params import ClipParams, DatasetParams, EmbedParams, RuntimeParams
from pipeline.config.library_params import ConfusionParams, LibraryParams, LLMParams
from pipeline.config.model_params import EvaluateParams, ModelParams, TrainParams
from pipeline.config.plan_params import PlanParams
from pipeline.config.schema import from_dict
from pipeline.core.errors import UserError

SECTIONS = {cls.SECTION: cls for cls in (DatasetParams, ClipParams, EmbedParams, RuntimeParams, ConfusionParams,
                                         LLMParams, LibraryParams, ModelParams, TrainParams, EvaluateParams,
                                         PlanParams)}
"""Section name -> dataclass, in the canonical order of params.yaml."""


def read_yaml(path: str | Path) -> dict:
    """The whole params file as a dict (an error names the file when it is missing or not a mapping)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"params: {path} not found; run from the project root or pass --params PATH.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"params: {path}{yaml_error_place(err)}; fix the syntax there.") from None
    if not isinstance(data, dict):
        raise UserError(f"params: {path} must be a mapping of sections (dataset:, clip:, ...).")
    return data


def yaml_error_place(err: yaml.YAMLError) -> str:
    """', line 3, column 7: not valid YAML (mapping values are not allowed here)' (1-based), from PyYAML's marks."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"{where}: not valid YAML ({problem})"


def load_sections(path: str | Path, *classes: type) -> tuple:
    """Load the named sections of the params file (one read) into their strict dataclasses (missing = defaults).

    An empty file is refused: the stages would otherwise run on code defaults that no params file records."""
    data = read_yaml(path)
    if not data:
        raise UserError(f"params: {path} is empty; write every key with `mdpr preset demo --params {path}` (the "
                        f"offline demo) or `mdpr preset NAME` (mdpr preset --list), or restore it from Git.")
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise UserError(f"params: unknown section {unknown[0]!r} in {path}; allowed sections: {', '.join(SECTIONS)}.")
    return tuple(from_dict(cls, data.get(cls.SECTION) or {}) for cls in classes)


def load_params(path: str | Path, cls: type):
    """Load one section of the params file into its strict dataclass."""
    return load_sections(path, cls)[0]


def defaults() -> dict:
    """Every section with its default values, in canonical order (what a fresh params.yaml holds)."""
    return {name: {field.name: yaml_value(getattr(cls(), field.name)) for field in dataclasses.fields(cls)}
            for name, cls in SECTIONS.items()}


def yaml_value(value):
    """A dataclass field value as YAML writes it (tuples as lists)."""
    return list(value) if isinstance(value, tuple) else value
