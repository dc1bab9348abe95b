"""Every benchmark script runs: `benchmarks/<name>.py --smoke` exits 0 and prints its `SUMMARY <name>:` line (one test
per script, found by globbing, so a new benchmark is covered as soon as it exists); `make bench-gpu` on a machine
without CUDA says so and exits 0."""
import os
import runpy
import subprocess
import sys

import pytest

from tests.helpers.worlds import REPO

SCRIPTS = sorted(path for path in (REPO / "benchmarks").glob("*.py") if not path.name.startswith("_"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[path.stem for path in SCRIPTS])
def test_smoke_run_of_every_benchmark_exits_0_and_prints_its_summary(script, tmp_path, monkeypatch, capsys):
    """The script file runs as `__main__` (runpy: its argument parsing, main and exit status) in this process, so
    torch and open_clip load once for all scripts instead of once per script (~8 s each); the children, servers and
    DVC calls a script starts still run as processes, and they dominate: measured 631 s for 11 scripts at a load
    average of 10-13 on 2 cores (compare 123 s: every stage on two tiny worlds; train 113 s: two children; lineage
    107 s: DVC started four times; embed 78 s: a child; gpu 74 s; eval 58 s: a child; the rest under 40 s each)."""
    import torch

    monkeypatch.chdir(tmp_path)  # anything a script writes beside it lands here
    monkeypatch.setattr(sys, "argv", [str(script), "--smoke"])
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(os, "environ", dict(os.environ))  # llm.py sets its key variable
    threads = torch.get_num_threads()  # compare.py and router.py set torch's threads
    try:
        runpy.run_path(str(script), run_name="__main__")
        status = 0
    except SystemExit as exit_:
        status = exit_.code or 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert status == 0, f"{script.name} --smoke exited with {status!r}:\n{out[-3000:]}"
    summaries = [line for line in out.splitlines() if line.startswith(f"SUMMARY {script.stem}: ")]
    assert summaries, f"{script.name} --smoke printed no `SUMMARY {script.stem}:` line:\n{out[-3000:]}"


def test_gpu_benchmark_without_a_gpu_says_so_and_exits_0(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu.py"), "--out-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "bench-gpu: no CUDA GPU found on this machine; nothing measured (run it on a " \
                                 "machine with one)."
    assert not list(tmp_path.iterdir())  # no summary written
