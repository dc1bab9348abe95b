"""Typed, strict parameters: one dataclass per section of `params.yaml`, loaded one file read per call.

    evaluate = load_params("params.yaml", EvaluateParams)
    model, train = load_sections("params.yaml", ModelParams, TrainParams)

A stage loads only the sections it declares in `dvc.yaml`, so a key it does not read can never change its output
unseen. Loading fails before any work, with one line naming the section, the key and what is allowed, on an unknown
key, a wrong type or an out-of-range value. The sections themselves live in data_params.py (dataset, clip, embed,
runtime), library_params.py (confusion, llm, library) and model_params.py (model, train, evaluate).

The `runtime` section holds speed-only knobs (device, batch size, workers). No stage declares it, so changing it
never invalidates an output.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from pipeline.config.data_params import ClipParams, DatasetParams, EmbedParams, RuntimeParams
from pipeline.config.library_params import ConfusionParams, LibraryParams, LLMParams
from pipeline.config.model_params import EvaluateParams, ModelParams, TrainParams
from pipeline.config.schema import from_dict
from pipeline.core.errors import UserError

SECTIONS = {cls.SECTION: cls for cls in (DatasetParams, ClipParams, EmbedParams, RuntimeParams, ConfusionParams,
                                         LLMParams, LibraryParams, ModelParams, TrainParams, EvaluateParams)}
"""Section name -> dataclass, in the canonical order of params.yaml."""


def read_yaml(path: str | Path) -> dict:
    """The whole params file as a dict (an error names the file when it is missing or not a mapping)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"params: {path} not found; run from the project root or pass --params PATH.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"params: {path} is not valid YAML ({str(err).splitlines()[0]}).") from None
    if not isinstance(data, dict):
        raise UserError(f"params: {path} must be a mapping of sections (dataset:, clip:, ...).")
    return data


def load_sections(path: str | Path, *classes: type) -> tuple:
    """Load the named sections of the params file (one read) into their strict dataclasses (missing = defaults)."""
    data = read_yaml(path)
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
