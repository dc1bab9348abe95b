"""Presets: named partial params files (presets/NAME.yaml) merged into params.yaml.

    mdpr preset --list                      # every preset with its one-line description
    mdpr preset cifar100-lt-if100           # merge it into params.yaml and print each key that changed
    mdpr preset demo                        # every key back to the offline demo defaults

A preset names only the keys it sets; every other key of params.yaml keeps its value, and a key params.yaml lacks
gets its default, so the written file always holds every section and key (what `dvc exp run -S` needs). The merged
result is checked through the strict params dataclasses before anything is written. `demo` is built in: it is
`pipeline.config.params.defaults()`, the values of params.yaml as committed.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from pipeline.config.params import SECTIONS, defaults, read_yaml, yaml_error_place, yaml_value
from pipeline.config.schema import from_dict
from pipeline.core.errors import UserError
from pipeline.core.paths import SHIPPED

PRESETS_DIR = SHIPPED / "presets"
DEMO = "demo"
DEMO_DESCRIPTION = "Offline demo defaults: synthetic-lt, the tiny random CLIP, offline LLM text (resets every key)."


def preset_paths() -> dict[str, Path]:
    """Preset name -> file, sorted by name."""
    return {path.stem: path for path in sorted(PRESETS_DIR.glob("*.yaml"))}


def describe(path: Path) -> str:
    """The first comment line of a preset file, without the '#'."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return ""


def available() -> dict[str, str]:
    """Every preset name (demo first) with its one-line description."""
    return {DEMO: DEMO_DESCRIPTION, **{name: describe(path) for name, path in preset_paths().items()}}


def load_preset(name: str) -> dict:
    """The sections and keys a preset sets, checked against the strict params (demo: every default)."""
    if name == DEMO:
        return defaults()
    paths = preset_paths()
    if name not in paths:
        raise UserError(f"preset: unknown preset {name!r}; available: {', '.join(available())}.")
    try:
        preset = yaml.safe_load(paths[name].read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise UserError(f"preset {name}: {paths[name]}{yaml_error_place(err)}; fix the syntax there.") from None
    if not isinstance(preset, dict):
        raise UserError(f"preset {name}: {paths[name]} must be a mapping of sections.")
    for section, values in preset.items():
        if section not in SECTIONS:
            raise UserError(f"preset {name}: unknown section {section!r}; allowed sections: {', '.join(SECTIONS)}.")
        try:
            from_dict(SECTIONS[section], values)
        except UserError as err:
            raise UserError(f"preset {name}: {err}") from None
    return preset


def merge(current: dict, preset: dict) -> dict:
    """Defaults, overlaid with the current params, overlaid with the preset; validated section by section.

    Sections and keys come out in the canonical order of `defaults()` (the order of params.yaml as committed).
    """
    unknown = sorted(set(current) - set(SECTIONS))
    if unknown:
        raise UserError(f"params: unknown section {unknown[0]!r}; allowed sections: {', '.join(SECTIONS)}.")
    merged = {}
    for section, section_defaults in defaults().items():
        values = {**section_defaults, **(current.get(section) or {}), **(preset.get(section) or {})}
        checked = from_dict(SECTIONS[section], values)  # unknown keys, types and ranges
        merged[section] = {key: yaml_value(getattr(checked, key)) for key in section_defaults}  # int -> float
    return merged


def changes(before: dict, after: dict) -> list[tuple[str, object, object, bool]]:
    """(section.key, old value, new value, whether the key was absent before) for every key whose value changed."""
    out = []
    for section, values in after.items():
        old_section = before.get(section) or {}
        for key, value in values.items():
            absent = key not in old_section
            old = old_section.get(key)
            if absent or old != value or type(old) is not type(value):
                out.append((f"{section}.{key}", old, value, absent))
    return out


def format_changes(rows: list[tuple[str, object, object, bool]]) -> list[str]:
    """One line per changed key: `clip.model: "mdpr-tiny" -> "ViT-B-16-quickgelu"`."""
    return [f"  {key}: {'(absent)' if absent else _show(old)} -> {_show(new)}" for key, old, new, absent in rows]



def _show(value) -> str:
    return json.dumps(value)


def render(params: dict) -> str:
    """params.yaml text: block-style YAML in canonical order."""
    return yaml.safe_dump(params, sort_keys=False)


def apply_preset(name: str, params_path: str | Path) -> tuple[dict, list]:
    """The merged params for `name` over the file at `params_path` (missing file = defaults), and the changes."""
    params_path = Path(params_path)
    current = read_yaml(params_path) if params_path.exists() else {}
    merged = merge(current, load_preset(name))
    return merged, changes(current, merged)
