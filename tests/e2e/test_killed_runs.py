"""A stage killed part-way (SIGKILL, as the OOM killer or a lost machine does) and run again: the finished work is
reused, nothing half-written sits at the output, and the result equals an uninterrupted run's.

    .venv/bin/python -m pytest tests/e2e/test_killed_runs.py -q

The stage runs as a process of its own and is killed from here (the process is the subject, so these live in the
end-to-end tier): embed-images through its embedding chunks, library through its LLM answer cache (the loopback
fake server, tests/helpers/fake_llm.py).
"""
import os
import signal
import subprocess
import sys
import time

import diskcache
import numpy as np
import pytest

from pipeline.core import paths
from pipeline.features import store
from stages import library as stage
from tests.helpers.fake_llm import FakeLLM
from tests.helpers.library_inputs import library_project, openai_section, write_inputs
from tests.helpers.worlds import REPO, write_params


@pytest.fixture
def library_inputs(tmp_path, monkeypatch):
    """The library stage's inputs in `tmp_path`, the working directory (tests/unit/library/test_stage_library.py)."""
    return library_project(tmp_path, monkeypatch)


def test_embed_images_killed_part_way_reuses_the_finished_chunks(project, embedded_world):
    (project / paths.IMAGES_H5).unlink()          # same batch size as the reference: same batches, same bits
    mdpr = [sys.executable, "-m", "stages.cli", "embed-images"]
    proc = subprocess.Popen(mdpr, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((project / ".cache").glob("embed/*/train/*.json"))) < 3:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list((project / ".cache").glob("embed/*/train/*.json")))
    assert done >= 3 and not (project / paths.IMAGES_H5).exists()   # killed part-way, nothing at the output
    first = next((project / ".cache").glob("embed/*/train/0000000000.npy"))
    chunk = np.load(first)
    chunk[0, 0, 0] = -chunk[0, 0, 0]              # a mark only a reused chunk can carry into images.h5
    np.save(first, chunk)
    result = subprocess.run(mdpr, cwd=project, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    resumed, resumed_attrs = store.read_h5(project / paths.IMAGES_H5)
    reference, reference_attrs = store.read_h5(embedded_world / paths.IMAGES_H5)
    assert resumed["train"]["features"][0, 0] == chunk[0, 0, 0]
    resumed["train"]["features"][0, 0] = -resumed["train"]["features"][0, 0]
    assert resumed_attrs == reference_attrs and set(resumed) == set(reference)
    for split, arrays in reference.items():       # everything else: the uninterrupted run's values
        for name, values in arrays.items():
            np.testing.assert_array_equal(resumed[split][name], values, err_msg=f"{split}/{name}")


def test_library_killed_part_way_resumes_losing_at_most_the_requests_in_flight(library_inputs):
    project = library_inputs
    names = [f"class {i}" for i in range(20)]
    write_inputs(project, names=names, confused={})
    with FakeLLM(latency=0.05) as server:
        write_params(project, {"llm": openai_section(server, project, concurrency=2)})
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        child = subprocess.Popen([sys.executable, "-c", "from stages.library import run; run()"], cwd=project,
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(server.requests) < 30 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait()
        received = len(server.requests)
        with diskcache.Cache(str(project / "cache"), disk=diskcache.JSONDisk) as cache:
            cached = len(cache)
        assert 30 <= received < 100 and received - 2 <= cached <= received
        assert not (project / paths.LIBRARY).exists()
        server.reset()
        summary = stage.run()
        assert len(server.requests) == summary["requests"] == 100 - cached
        assert summary["cache_hits"] == cached and summary["by_source"] == {"llm": 100}
        resumed = (project / paths.LIBRARY).read_bytes()
        write_params(project, {"llm": openai_section(server, project, concurrency=2, cache_dir=str(project / "c2"))})
        stage.run()                                   # an uninterrupted run from an empty cache
        assert (project / paths.LIBRARY).read_bytes() == resumed
