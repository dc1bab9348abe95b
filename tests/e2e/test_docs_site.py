"""The documentation site builds, strictly and offline: a broken link or anchor, or a page left out of the nav, fails.

    .venv/bin/python -m pytest tests/e2e/test_docs_site.py -q      # two mkdocs builds, about 3 s each on 2 cores
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers.worlds import REPO

SOURCES = ["mkdocs.yml", "docs", "README.md", "benchmarks/RESULTS.md", "data/README.md"]
"""What the site is built from: the config, the pages, the home page and the repository pages it includes."""
EXTERNAL = re.compile(r'<(?:link|script|img|iframe|source)\b[^>]*\b(?:href|src)="((?:https?:)?//[^"]*)"')


def build(root: Path, site: Path) -> subprocess.CompletedProcess:
    """`mkdocs build --strict` of the project at root, into site."""
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=root,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


def copy_sources(to: Path) -> Path:
    """A copy of the site's sources (to break them without touching the repository)."""
    for source in SOURCES:
        (to / source).parent.mkdir(parents=True, exist_ok=True)
        if (REPO / source).is_dir():
            shutil.copytree(REPO / source, to / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO / source, to / source)
    return to


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    result = build(REPO, site)
    assert result.returncode == 0, result.stdout + result.stderr
    return site


def test_every_page_is_in_the_nav_and_the_readme_is_the_home_page(site):
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    listed = {next(iter(entry.values())) for entry in config["nav"]}
    pages = sorted(path.name for path in (REPO / "docs").glob("*.md"))
    assert config["docs_dir"] == "docs" and set(pages) <= listed and "index.md" in listed
    for page in pages:
        assert (site / page.replace(".md", ".html")).is_file(), page
    home = (site / "index.html").read_text()
    assert "Your data in 4 steps" in home and 'href="getting-started.html"' in home  # README links rewritten
    assert 'href="benchmarks/RESULTS.html"' in (site / "method.html").read_text()   # ../benchmarks/RESULTS.md


def test_the_site_loads_nothing_from_the_network(site):
    external = {url for page in site.rglob("*.html") for url in EXTERNAL.findall(page.read_text())}
    assert not external, external          # no Google Fonts, no CDN script: the pages open offline


def test_a_broken_link_or_anchor_or_a_page_left_out_of_the_nav_fails_the_build(tmp_path):
    root = copy_sources(tmp_path / "project")
    page = root / "docs" / "predict.md"
    page.write_text(page.read_text() + "\nSee [the scaling page](scaling-out.md) and [cost](method.md#no-such-part).\n")
    (root / "docs" / "orphan.md").write_text("# A page no nav entry names\n")
    result = build(root, tmp_path / "site")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    messages = re.split(r"\n(?=[A-Z]+ +- )", output)        # one per log record, continuation lines included
    warnings = [message for message in messages if message.startswith("WARNING")]
    for problem in ("scaling-out.md", "#no-such-part", "orphan.md"):   # each one a warning, so each one fails
        assert [line for line in warnings if problem in line], (problem, output)
