"""embed_images under torchrun (CPU, gloo): two ranks give the single-process cache."""
import subprocess
import sys

import numpy as np
import pytest

from pipeline import paths, store
from tests.conftest import write_params

pytestmark = pytest.mark.slow


def _compare_with_single_process(project, embedded_world):
    multi, multi_attrs = store.read_h5(project / paths.IMAGES_H5)
    single, single_attrs = store.read_h5(embedded_world / paths.IMAGES_H5)
    assert multi_attrs == single_attrs
    assert set(multi) == set(single)
    for split in ("train", "val", "test"):
        assert list(multi[split]["ids"]) == list(single[split]["ids"])
        np.testing.assert_array_equal(multi[split]["labels"], single[split]["labels"])
        np.testing.assert_allclose(multi[split]["features"], single[split]["features"], atol=1e-5)


def test_torchrun_two_ranks_match_single_process(project, embedded_world):
    (project / paths.IMAGES_H5).unlink()
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "stages.cli", "embed-images"]
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    _compare_with_single_process(project, embedded_world)
    assert not any((project / ".cache" / "embed").iterdir())


def test_runtime_launcher_starts_torchrun_itself(project, embedded_world):
    (project / paths.IMAGES_H5).unlink()
    write_params(project, {"runtime": {"launcher": "torchrun", "nproc_per_node": 2, "device": "cpu",
                                       "batch_size": 16, "num_workers": 0}})
    result = subprocess.run([sys.executable, "-m", "stages.cli", "embed-images"], cwd=project, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    _compare_with_single_process(project, embedded_world)
