"""`mdpr report --html`: one self-contained page, opened in a real headless browser (chromium; skipped without one).

    .venv/bin/python -m pytest tests/e2e/test_html_report.py -q       # apt-get install chromium (Debian)
"""
import base64
import html
import json
import re

import numpy as np
import pytest

from pipeline.core import paths
from pipeline.evaluation.html import PLOTS
from pipeline.evaluation.plots import STYLE
from pipeline.evaluation.report import format_routing
from tests.helpers.browser import screenshot
from tests.helpers.once import built_once
from tests.helpers.worlds import copy_world, run_mdpr

WIDTH, HEIGHT = 1200, 4000


def colour_pixels(pixels: np.ndarray, hex_colour: str) -> int:
    """Pixels within 12 of a colour in every channel."""
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(pixels.astype(int) - rgb).max(-1) <= 12).sum())


@pytest.fixture(scope="session")
def report(trained_world, tmp_path_factory):
    """`mdpr report --html report.html` run once in a copy of the trained world; the page (read-only use)."""
    def build(folder):
        project = copy_world(trained_world, folder / "project")
        result = run_mdpr(["report", "--html", str(folder / "report.html")], project)
        assert result.returncode == 0, result.stderr
    return built_once(tmp_path_factory, "html_report", build) / "report.html"


def test_the_page_holds_the_run_and_needs_nothing_from_elsewhere(report, monkeypatch):
    monkeypatch.chdir(report.parent / "project")
    text = report.read_text()
    assert "<script" not in text.lower() and not re.search(r"""(src|href)\s*=\s*['"](?!data:)""", text)
    metrics = json.loads(paths.METRICS.read_text())
    for table in (metrics, metrics["val"]):
        for method in ("zero_shot", "base", "semantic", "mdpr"):
            assert f"<td>{100 * table[method]['top1']:.2f}%</td><td>{100 * table[method]['top5']:.2f}%</td>" in text
    assert f"kept epoch {metrics['kept']['epoch']} (val)" in text
    for table in (metrics, metrics["val"]):  # each split's routing figures
        assert html.escape(format_routing(table["routing"]), quote=True) in text
    records = [json.loads(line) for line in paths.LIBRARY.read_text().splitlines()]
    assert f"{len(records)} descriptions by source: offline {len(records)}. Fallbacks" in text
    assert "<th>model</th><td>mdpr-tiny</td>" in text and "<th>backend</th><td>offline</td>" in text
    assert "train:\n  epochs: 3" in text                                    # the params file itself
    embedded = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)
    assert [base64.b64decode(data) for data in embedded] == [(paths.PLOTS / name).read_bytes() for name in PLOTS]


def test_a_headless_browser_renders_the_page_with_its_plots(report, tmp_path):
    pixels = screenshot(report, tmp_path, WIDTH, HEIGHT)
    assert pixels.shape == (HEIGHT, WIDTH, 3)
    assert (pixels.min(-1) < 200).mean() > 0.05                             # text, tables and figures: not blank
    for method in ("base", "mdpr"):       # the methods' colours exist only inside the embedded PNGs, not the page's
        assert colour_pixels(pixels, STYLE[method][0]) > 300, method       # CSS: the browser decoded the images
