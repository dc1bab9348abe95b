""".ci/run: it installs Debian's chromium when no browser is on PATH and the machine allows it, says why when it cannot
(the browser tests then skip), and runs `make test` either way.

    .venv/bin/python -m pytest tests/unit/test_ci.py -q

Its `install_browser` runs in bash with PATH holding only stand-ins (a fake `apt-get` that logs its arguments, an
`id` that says which user runs it), so no case installs anything.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.browser import BROWSERS
from tests.helpers.worlds import REPO

CI = REPO / ".ci" / "run"
LOGGING_APT = 'echo "DEBIAN_FRONTEND=$DEBIAN_FRONTEND $*" >> "${0%/*}/apt.log"'   # ${0%/*}: the stand-ins' folder


def install_browser(tmp_path: Path, tools: dict[str, str]) -> tuple[subprocess.CompletedProcess, str]:
    """`.ci/run` up to its last two lines, then `install_browser`, with PATH = only `tools` (name -> shell body) and
    `env`; the result and what the fake apt-get was asked."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(shutil.which("env"), bin_dir / "env")
    for name, body in tools.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    script = CI.read_text()
    head, tail = script.rsplit("\ninstall_browser\nmake test\n", 1)
    assert not tail.strip(), "the script must end with `install_browser` then `make test`"
    head = head.replace('cd "$(dirname "$0")/.."\n', "")
    result = subprocess.run(["/bin/bash", "-c", head + "\ninstall_browser\n"], env={"PATH": str(bin_dir)},
                            capture_output=True, text=True, timeout=60)
    log = bin_dir / "apt.log"
    return result, log.read_text() if log.exists() else ""


def test_the_script_looks_for_the_browsers_the_tests_use_and_runs_make_test():
    script = CI.read_text()
    assert f'BROWSERS="{" ".join(BROWSERS)}"' in script
    assert script.rstrip().endswith("\ninstall_browser\nmake test") and os.access(CI, os.X_OK)


@pytest.mark.parametrize("browser", BROWSERS)
def test_a_browser_on_path_installs_nothing(tmp_path, browser):
    result, asked = install_browser(tmp_path, {browser: "exit 0", "apt-get": LOGGING_APT, "id": "echo 0"})
    assert result.returncode == 0 and result.stderr == "" and asked == ""


def test_as_root_without_a_browser_chromium_is_installed_non_interactively(tmp_path):
    apt_then_browser = LOGGING_APT + '\nif [ "$1" = install ]; then echo "#!/bin/bash" > "${0%/*}/chromium"; ' \
                                     '/bin/chmod +x "${0%/*}/chromium"; fi'
    result, asked = install_browser(tmp_path, {"apt-get": apt_then_browser, "id": "echo 0"})
    assert result.returncode == 0, result.stderr
    assert asked.splitlines() == ["DEBIAN_FRONTEND=noninteractive update -qq",
                                  "DEBIAN_FRONTEND=noninteractive install -y -qq chromium"]
    assert result.stderr == ".ci/run: installing chromium (apt-get) for the browser tests\n"


@pytest.mark.parametrize("tools, reason", [
    ({}, "no browser on PATH and no apt-get to install chromium: the browser tests will skip"),
    ({"apt-get": LOGGING_APT, "id": "echo 1000"}, "not root (nor password-less sudo) to apt-get install chromium"),
    ({"apt-get": LOGGING_APT + "\nexit 100", "id": "echo 0"}, "apt-get could not install chromium (see above)"),
    ({"apt-get": LOGGING_APT, "id": "echo 0"}, "apt-get installed chromium but no browser is on PATH"),
], ids=["no apt-get", "not root", "apt-get fails", "installed but not on PATH"])
def test_when_it_cannot_install_it_says_why_and_goes_on(tmp_path, tools, reason):
    result, asked = install_browser(tmp_path, tools)
    assert result.returncode == 0, result.stderr     # make test still runs; the browser tests skip with their reason
    assert reason in result.stderr.splitlines()[-1], result.stderr
    installs = tools.get("id") == "echo 0" and "exit 100" not in tools["apt-get"]   # a failed update stops there
    assert ("install -y -qq chromium" in asked) == installs, asked
