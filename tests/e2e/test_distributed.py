"""embed_images under torchrun (CPU, gloo): two ranks give the single-process cache; each rank encodes its own shard."""
import subprocess
import sys

import numpy as np
import pytest

from pipeline.core import paths
from pipeline.features import store
from tests.helpers.worlds import write_params

pytestmark = pytest.mark.slow


def _compare_with_single_process(multi: dict, multi_attrs: dict, embedded_world):
    """images.h5 groups and attributes of a multi-process run equal the single-process cache's."""
    single, single_attrs = store.read_h5(embedded_world / paths.IMAGES_H5)
    assert multi_attrs == single_attrs
    assert set(multi) == set(single)
    for split in ("train", "val", "test"):
        assert list(multi[split]["ids"]) == list(single[split]["ids"])
        np.testing.assert_array_equal(multi[split]["labels"], single[split]["labels"])
        np.testing.assert_allclose(multi[split]["features"], single[split]["features"], atol=1e-5)


def _rank_one_shard_encoded_with_a_mark(project) -> tuple[int, np.ndarray]:
    """What rank 1 of 2 writes for the train split (an earlier, interrupted torchrun), with a mark in its first chunk
    that only a rerun reusing that chunk can carry into images.h5. Returns (first row of the shard, marked feature).

    A single process never reads this chunk: its own chunks start at row 0, every batch_size rows (the shard starts at
    row 145, not a multiple of 16), so the mark reaches images.h5 only when a second rank ran."""
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
    half = len(ids) // 2
    assert half % 16
    embed.EmbedJob(ids, ImageReader(dataset), encoder, ViewTransform(encoder.preprocess, 32), scratch / "train", 16,
                   start=half, progress=False).run()
    first = scratch / "train" / f"{half:010d}.npy"
    marked = np.load(first)
    marked[0, 0] = -marked[0, 0]
    np.save(first, marked)
    return half, marked[0, 0]


def _assert_second_rank_reused_its_shard(project, embedded_world, half: int, marked: np.ndarray) -> None:
    """The marked row made it into images.h5; everything else is the single-process encoding."""
    groups, attrs = store.read_h5(project / paths.IMAGES_H5)
    features = groups["train"]["features"]
    np.testing.assert_allclose(features[half], marked, atol=1e-6)
    features[half] = -features[half]
    _compare_with_single_process(groups, attrs, embedded_world)


def test_runtime_launcher_starts_two_ranks_itself(project, embedded_world):
    half, marked = _rank_one_shard_encoded_with_a_mark(project)
    write_params(project, {"runtime": {"launcher": "torchrun", "nproc_per_node": 2, "device": "cpu",
                                       "batch_size": 16, "num_workers": 0}})
    result = subprocess.run([sys.executable, "-m", "stages.cli", "embed-images"], cwd=project, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    _assert_second_rank_reused_its_shard(project, embedded_world, half, marked)
    assert not any((project / ".cache" / "embed").iterdir())


def test_torchrun_two_ranks_resume_their_shards_and_match_the_single_process(project, embedded_world):
    """Rank 1's train shard is already encoded (an earlier, interrupted torchrun): the rerun under torchrun reuses
    those chunks; rank 0's train shard and both ranks' val and test shards are encoded afresh; the cache equals the
    single-process one (but for the marked row) and the scratch chunks are gone. (One torchrun start, ~12 s: the
    fresh two-rank run and the resume are the same run.)"""
    half, marked = _rank_one_shard_encoded_with_a_mark(project)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "stages.cli", "embed-images"]
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    _assert_second_rank_reused_its_shard(project, embedded_world, half, marked)
    assert not any((project / ".cache" / "embed").iterdir())
