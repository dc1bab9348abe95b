"""mkdocs hooks: the README is the site's home page, and the repository files the pages link to are pages too.

    mkdocs build --strict      # make docs (site/); mkdocs.yml names this file under `hooks:`

The pages are written for the repository host: relative links between files of the repository (`docs/method.md`
from the README, `../benchmarks/RESULTS.md` from a page). This hook adds the README (as index.md) and REPO_PAGES to
the site and rewrites those links to the same files' places in the site, so one text serves both. A link to any other
file outside docs/ is left as written, and `mkdocs build --strict` then fails on it.
"""
from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File

REPO_PAGES = {"README.md": "index.md", "benchmarks/RESULTS.md": "benchmarks/RESULTS.md",
              "data/README.md": "data/README.md"}
"""Repository path of each file outside docs/ that is a page of the site -> its path in the site."""
LINK = re.compile(r"\]\(([^)\s#]*)(#[^)\s]*)?\)")   # ](target#anchor)


def repo_path(site_uri: str) -> str:
    """Where the page at this site path lives in the repository."""
    return {site: repo for repo, site in REPO_PAGES.items()}.get(site_uri, f"docs/{site_uri}")


def site_uri(repo_target: str) -> str | None:
    """Where a repository file is in the site (None: not part of the site)."""
    if repo_target in REPO_PAGES:
        return REPO_PAGES[repo_target]
    return repo_target.removeprefix("docs/") if repo_target.startswith("docs/") else None


def on_files(files, config):
    root = Path(config.config_file_path).parent
    for source, uri in REPO_PAGES.items():
        files.append(File.generated(config, uri, abs_src_path=str(root / source)))
    return files


def on_page_markdown(markdown, page, config, files):
    here = page.file.src_uri
    here_in_repo = posixpath.dirname(repo_path(here))

    def relink(match: re.Match) -> str:
        target, anchor = match.group(1), match.group(2) or ""
        if not target or "://" in target or target.startswith(("/", "mailto:")):
            return match.group(0)
        in_site = site_uri(posixpath.normpath(posixpath.join(here_in_repo, target)))
        if in_site is None:
            return match.group(0)
        return f"]({posixpath.relpath(in_site, posixpath.dirname(here) or '.')}{anchor})"

    return LINK.sub(relink, markdown)
