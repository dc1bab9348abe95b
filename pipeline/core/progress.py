"""Progress bars for long work: on stderr (stdout keeps the tables and summaries), shown only after a few seconds.

    with progress_bar(len(texts), "embed-library", "text", enabled=True) as bar:
        bar.update(batch_size)
"""
from __future__ import annotations

import sys

from tqdm import tqdm

PROGRESS_DELAY_S = 3.0
"""A bar appears only when the work takes longer than this (short runs, like the tests', print nothing)."""


def progress_bar(total: int, desc: str, unit: str, enabled: bool = True) -> tqdm:
    """A tqdm bar on stderr that shows up after PROGRESS_DELAY_S seconds; a silent no-op when not `enabled`."""
    return tqdm(total=total, desc=desc, unit=unit, delay=PROGRESS_DELAY_S, disable=not enabled, file=sys.stderr,
                mininterval=1.0)
