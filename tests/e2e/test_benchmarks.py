"""`make bench-gpu` on a machine without CUDA: says so and exits 0 without measuring."""
import os
import subprocess
import sys

from tests.helpers.worlds import REPO


def test_gpu_benchmark_without_a_gpu_says_so_and_exits_0(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu.py"), "--out-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "bench-gpu: no CUDA GPU found on this machine; nothing measured (run it on a " \
                                 "machine with one)."
    assert not list(tmp_path.iterdir())  # no summary written
