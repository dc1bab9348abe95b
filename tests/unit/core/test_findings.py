"""Findings: the formatted list, the one error line, free disk against what the caches need.

    .venv/bin/python -m pytest tests/unit/core/test_findings.py -q
"""
import socket
import urllib.error

from pipeline.core.findings import MISSING, NOTE, OK, Finding, disk_finding, format_findings, one_line, plain_reason


def test_format_puts_each_fix_under_its_missing_input_and_none_under_ok():
    found = [Finding("dataset root", MISSING, "data/raw/x not found", "put it there"),
             Finding("GPU", OK, "1 visible", "never shown")]
    assert format_findings(found) == ["  MISSING  dataset root  data/raw/x not found",
                                      "                         fix: put it there",
                                      "  ok       GPU           1 visible"]
    assert one_line(found) == "dataset root: data/raw/x not found (fix: put it there)"


def test_disk_need_against_free_space(tmp_path):
    assert disk_finding(tmp_path, 1, "caches").status == OK
    short = disk_finding(tmp_path / "not" / "yet", 2**60, "caches")  # a folder not made yet: its existing parent
    assert short.status == MISSING and "GiB free in" in short.detail and short.fix
    assert disk_finding(tmp_path, None, "caches").status == NOTE


def test_os_errors_lose_their_errno_prefix():
    err = urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))
    assert plain_reason(err) == "Name or service not known"
    assert plain_reason("ConnectError: [Errno 111] Connection refused") == "ConnectError: Connection refused"
