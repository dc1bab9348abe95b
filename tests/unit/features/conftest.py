"""Fixtures of the feature tests: who read the images (main process or which DataLoader worker)."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture
def image_readers(monkeypatch, tmp_path):
    """`ImageReader.__call__` wrapped so that every image read (the real read still runs) logs which DataLoader worker
    made it (-1: the main process). Returns a function giving the worker id of each read since its last call.
    Workers are forked, so they run the wrapped method; the log is appended line by line (atomic for short lines)."""
    from pipeline.data.images import ImageReader

    log = tmp_path / "image_reads.log"
    read = ImageReader.__call__

    def logged(self, image_id):
        worker = torch.utils.data.get_worker_info()
        with open(log, "a") as handle:
            handle.write(f"{worker.id if worker else -1}\n")
        return read(self, image_id)

    monkeypatch.setattr(ImageReader, "__call__", logged)

    def workers() -> list[int]:
        lines = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        return [int(line) for line in lines]
    return workers
