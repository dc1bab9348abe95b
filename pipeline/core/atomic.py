"""Atomic file output: nothing half-written is ever left at an output path.

    with atomic_path("artifacts/library/library.jsonl") as tmp:
        tmp.write_text(...)            # or h5py.File(tmp, "w"), torch.save(..., tmp)

The body writes to a temporary file beside the target; on success it is fsynced and `os.replace`d onto the target
(atomic on one filesystem); on any error it is removed and the target is left as it was.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it onto `path` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    """Atomically write a text file (UTF-8, '\\n' line ends)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, data) -> None:
    """Atomically write deterministic, human-readable JSON (sorted keys, 2-space indent, final newline)."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_jsonl(path: str | Path, records: list[dict]) -> None:
    """Atomically write one JSON object per line (sorted keys)."""
    write_text(path, "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in records))


def write_csv(path: str | Path, rows: list[dict]) -> None:
    """Atomically write dict rows as CSV with a header (the first row's keys)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
