"""Inside a DVC project, an error about a missing pipeline output also says how DVC gets it back.

    dvc_hint("artifacts/data/classes.json not found; run `mdpr prepare` (or `dvc repro prepare`) first.")
    # -> "This DVC project's dvc.lock records artifacts/data (stage prepare): `dvc pull` fetches it from the DVC
    #    remote, `dvc repro` rebuilds it."

A fresh clone has dvc.lock but no artifacts/: the answer there is `dvc pull` (what a teammate pushed) or `dvc repro`,
not running the stages one by one. The hint is added by the CLI (stages/common.py) to any error line that names an
output of a dvc.yaml stage that is absent from the workspace; outside a DVC project nothing is added.
"""
from __future__ import annotations

from pathlib import Path

import yaml

OUTPUT_KINDS = ("outs", "metrics", "plots")


def project_root(start: Path) -> Path | None:
    """The nearest folder at or above `start` holding dvc.yaml and a .dvc/ folder (a DVC project), else None."""
    for folder in (start, *start.parents):
        if (folder / "dvc.yaml").is_file() and (folder / ".dvc").is_dir():
            return folder
    return None


def stage_outputs(stages: dict) -> dict[str, str]:
    """{output path: stage name} of the `stages:` mapping of dvc.yaml or dvc.lock (entries are paths or
    {path: options})."""
    outputs = {}
    for name, stage in (stages or {}).items():
        for kind in OUTPUT_KINDS:
            for entry in (stage or {}).get(kind) or []:
                outputs[_entry_path(entry).rstrip("/")] = name
    return outputs


def _entry_path(entry) -> str:
    """dvc.yaml: `path` or `{path: options}`; dvc.lock: `{path: ..., md5: ...}`."""
    if isinstance(entry, dict):
        return str(entry["path"] if "path" in entry else next(iter(entry)))
    return str(entry)


def dvc_hint(message: str, start: Path | None = None) -> str | None:
    """How DVC restores the missing output `message` names, or None (no DVC project, or no such output)."""
    root = project_root((start or Path.cwd()).resolve())
    if root is None:
        return None
    try:
        declared = stage_outputs(yaml.safe_load((root / "dvc.yaml").read_text()).get("stages"))
        lock = root / "dvc.lock"
        recorded = stage_outputs(yaml.safe_load(lock.read_text()).get("stages")) if lock.is_file() else {}
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    for path, stage in sorted(declared.items(), key=lambda item: -len(item[0])):
        if path in message and not (root / path).exists():
            if path in recorded:
                return (f"This DVC project's dvc.lock records {path} (stage {stage}): `dvc pull` fetches it from the "
                        f"DVC remote, `dvc repro` rebuilds it.")
            return f"In this DVC project `dvc repro` builds {path} (stage {stage}) and what it needs."
    return None
