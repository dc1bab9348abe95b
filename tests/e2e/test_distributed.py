"""embed_images under torchrun (CPU, gloo): two ranks give the single-process cache."""
import subprocess
import sys

import numpy as np
import pytest

from pipeline.core import paths
from pipeline.features import store
from tests.helpers.worlds import write_params

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


def test_each_rank_resumes_its_own_shard(project, embedded_world):
    """Rank 1's train shard is already encoded (an earlier, interrupted torchrun): the rerun reuses those chunks."""
    from pipeline.config.data_params import ClipParams, DatasetParams, EmbedParams
    from pipeline.config.params import load_params
    from pipeline.data import manifest
    from pipeline.data.images import ImageReader
    from pipeline.features import embed
    from pipeline.features.clip import load_encoder
    from pipeline.features.views import ViewTransform

    (project / paths.IMAGES_H5).unlink()
    dataset, embed_params = load_params("params.yaml", DatasetParams), load_params("params.yaml", EmbedParams)
    encoder = load_encoder(load_params("params.yaml", ClipParams), "cpu")
    scratch = paths.SCRATCH / "embed" / embed.fingerprint(encoder.identity, dataset, embed_params,
                                                                   paths.MANIFEST.read_bytes())
    ids = [image_id for split, image_id, _ in manifest.read_manifest(paths.MANIFEST) if split == "train"]
    done = embed.EmbedJob(ids, ImageReader(dataset), encoder, ViewTransform(encoder.preprocess, 32),
                          scratch / "train", 16, start=len(ids) // 2, progress=False)
    done.run()                                          # exactly what rank 1 of 2 writes for the train split
    first = scratch / "train" / f"{len(ids) // 2:010d}.npy"
    marked = np.load(first)
    marked[0, 0] = -marked[0, 0]                        # a mark only a reused chunk can carry into images.h5
    np.save(first, marked)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "stages.cli", "embed-images"]
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    groups, _ = store.read_h5(project / paths.IMAGES_H5)
    np.testing.assert_allclose(groups["train"]["features"][len(ids) // 2], marked[0, 0], atol=1e-6)
    single, _ = store.read_h5(embedded_world / paths.IMAGES_H5)
    half = len(ids) // 2                                # rank 0's shard, encoded in this run
    np.testing.assert_allclose(groups["train"]["features"][:half], single["train"]["features"][:half], atol=1e-5)
