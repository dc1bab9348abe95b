"""Findings: what an input check saw, one per input the current params need, each with its fix.

    findings = [Finding("dataset root", MISSING, "data/raw/imagenet holds no images", "put ImageNet's train/ ...")]
    print("\n".join(format_findings(findings)))    # one block per input: status, name, what was seen, the fix
    missing_names(findings)                        # ['dataset root']: what `mdpr check` exits 2 for

The wings each check their own inputs and return findings (pipeline/data/inputs.py: dataset files;
pipeline/features/inputs.py: CLIP weights, GPU, disk for the feature caches; pipeline/library/inputs.py: the LLM key,
server and descriptor file); `mdpr check` (stages/commands/check.py) lists them all at once. Nothing here prints or
reads an environment variable's value: a finding says whether a key is set, never what it holds.
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

OK = "ok"
MISSING = "missing"
NOTE = "note"
"""Statuses: ok (present), missing (the run would fail: `mdpr check` exits 2), note (not checked, or fetched on the
first run: said, not failed)."""
STATUS_LABEL = {OK: "ok", MISSING: "MISSING", NOTE: "note"}


@dataclass(frozen=True)
class Finding:
    """One input: its name, whether it holds, what was seen, and (unless ok) how to fix it."""

    name: str      # "dataset root", "train list", "CLIP weights", "API key variable", ...
    status: str    # OK, MISSING or NOTE
    detail: str    # what was seen: a path, a count, a reason
    fix: str = ""  # what to do (where the input comes from and where it goes); empty when ok


def missing_names(findings: list[Finding]) -> list[str]:
    """The names of the missing inputs, in order."""
    return [finding.name for finding in findings if finding.status == MISSING]


def format_findings(findings: list[Finding]) -> list[str]:
    """One line per input (`  MISSING  train list  data/splits/... not found`), its fix indented below it."""
    width = max((len(finding.name) for finding in findings), default=0)
    lines = []
    for finding in findings:
        lines.append(f"  {STATUS_LABEL[finding.status]:<7}  {finding.name:<{width}}  {finding.detail}")
        if finding.fix and finding.status != OK:
            lines.append(f"  {'':<7}  {'':<{width}}  fix: {finding.fix}")
    return lines


def one_line(findings: list[Finding]) -> str:
    """The missing inputs as one error line: `train list: <what> (fix: <how>); dataset root: ...`."""
    return "; ".join(f"{f.name}: {f.detail}" + (f" (fix: {f.fix})" if f.fix else "")
                     for f in findings if f.status == MISSING)


def plain_reason(err: BaseException | str) -> str:
    """An OS or URL error's reason on one line, without its `[Errno N]` prefix: 'Name or service not known'."""
    if isinstance(err, BaseException):
        reason = getattr(err, "reason", err)  # urllib's URLError wraps the socket error
        err = str(getattr(reason, "strerror", None) or reason)
    return " ".join(re.sub(r"\[Errno -?\d+\]\s*", "", err).split())


def disk_finding(folder: str | Path, need_bytes: int | None, what: str) -> Finding:
    """Whether the file system holding `folder` has `need_bytes` free for `what` (None: the size is unknown)."""
    folder = Path(folder)
    existing = next(p for p in (folder, *folder.absolute().parents) if p.exists())
    free = shutil.disk_usage(existing).free
    where = f"{free / 2**30:.1f} GiB free in {existing.absolute()}"
    if need_bytes is None:
        return Finding("free disk", NOTE, f"{where}; the size of {what} is not known before prepare")
    detail = f"{where}; {what} need about {need_bytes / 2**30:.2f} GiB"
    if free >= need_bytes:
        return Finding("free disk", OK, detail)
    return Finding("free disk", MISSING, detail, f"free {(need_bytes - free) / 2**30:.2f} GiB there, or run the "
                   "project from a larger disk (the caches are written under the project folder)")
