"""A real headless browser for the tests that check a page renders (chromium or Chrome; the test skips without one).

    shot = screenshot(page, tmp_path, width=1200, height=4000)     # (H, W, 3) uint8 pixels of the rendered page
    dom = rendered_dom(page, tmp_path)                              # the DOM after scripts ran (Vega's <canvas>)
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def browser() -> str:
    """The first browser on PATH; skips the test (with how to install one) when there is none."""
    for name in BROWSERS:
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no headless browser on PATH (chromium, google-chrome): `apt-get install chromium` on Debian")


def _run(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The browser on a local file, offline-only flags, a profile of its own under tmp_path."""
    return subprocess.run([browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--user-data-dir={tmp_path / 'browser-profile'}", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=180, check=True)


def screenshot(page: Path, tmp_path: Path, width: int, height: int) -> np.ndarray:
    shot = tmp_path / "shot.png"
    _run(page, tmp_path, f"--window-size={width},{height}", f"--screenshot={shot}")
    return np.asarray(Image.open(shot).convert("RGB"))


def rendered_dom(page: Path, tmp_path: Path, budget_ms: int = 10000) -> str:
    """The page's DOM once its scripts ran (virtual time: no real waiting)."""
    return _run(page, tmp_path, f"--virtual-time-budget={budget_ms}", "--dump-dom").stdout
