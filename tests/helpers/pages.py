"""The command lines a documentation page shows, for the tests that check each one is run.

    commands("docs/team-sharing.md")      # every line of the page's bash code blocks, comments stripped
"""
from __future__ import annotations

import re

from tests.helpers.worlds import REPO


def command_of(line: str) -> str:
    """A command line without its `# comment`, spaces collapsed ('' for a comment or a blank line)."""
    return " ".join(re.sub(r"(^|\s)#.*$", "", line).split())


def commands(page: str) -> list[str]:
    """Every command line of the bash code blocks of the page (a path relative to the repository)."""
    blocks = re.findall(r"```bash\n(.*?)```", (REPO / page).read_text(), flags=re.S)
    return [command_of(line) for block in blocks for line in block.splitlines() if command_of(line)]
