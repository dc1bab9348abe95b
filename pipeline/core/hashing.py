"""Content hashes that bind one file to another (feature caches to checkpoints, checkpoints to their encoder).

    digest = file_sha256("artifacts/features/images.h5")      # hex sha256, read in 4 MiB blocks
"""
from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
