"""Image embedding: outputs, byte-identical reruns, resume after an interruption, unreadable images."""
import json

import numpy as np
import pytest

from pipeline.config.data_params import ClipParams, DatasetParams, EmbedParams, RuntimeParams
from pipeline.config.params import load_params
from pipeline.core import paths
from pipeline.core.errors import UserError
from pipeline.data import manifest
from pipeline.data.images import ImageReader
from pipeline.features import embed, store
from pipeline.features.clip import load_encoder
from pipeline.features.views import ViewTransform
from stages import embed_images
from tests.helpers.worlds import write_params


def test_embedded_world_has_every_split(embedded_world):
    groups, attrs = store.read_h5(embedded_world / paths.IMAGES_H5)
    classes = json.loads((embedded_world / paths.CLASSES).read_text())
    for split, n in classes["splits"].items():
        assert groups[split]["features"].shape == (n, 64)
        np.testing.assert_allclose(np.linalg.norm(groups[split]["features"], axis=1), 1, atol=1e-5)
    assert attrs["class_hash"] == classes["class_hash"] and attrs["model"] == "mdpr-tiny"
    rows = manifest.read_manifest(embedded_world / paths.MANIFEST)
    assert list(groups["train"]["ids"]) == [r[1] for r in rows if r[0] == "train"]
    assert list(groups["test"]["labels"]) == [r[2] for r in rows if r[0] == "test"]


def test_every_stored_row_is_a_fresh_encoding_of_its_manifest_image_in_every_chunk(embedded_world, monkeypatch):
    """Row i of each split in images.h5 is the encoding of the manifest's row i of that split, its label too: every
    image decoded and preprocessed here with the encoder's own transform and encoded 7 at a time (the stage encoded
    16 at a time, so a chunk stored at the wrong offset, or the last partial chunk lost or shifted, shows)."""
    import torch

    monkeypatch.chdir(embedded_world)
    groups, _ = store.read_h5(paths.IMAGES_H5)
    encoder = load_encoder(load_params("params.yaml", ClipParams), "cpu")
    reader = ImageReader(load_params("params.yaml", DatasetParams))
    rows = manifest.read_manifest(paths.MANIFEST)
    batch = load_params("params.yaml", RuntimeParams).batch_size
    assert any(sum(r[0] == split for r in rows) % batch for split in groups if split), "no partial last chunk"
    for split in (s for s in groups if s):
        ids, labels = [r[1] for r in rows if r[0] == split], [r[2] for r in rows if r[0] == split]
        fresh = np.concatenate([encoder.encode_image_batch(torch.stack([encoder.preprocess(reader(i))
                                                                        for i in ids[k:k + 7]]))
                                for k in range(0, len(ids), 7)])  # (N, d)
        np.testing.assert_allclose(groups[split]["features"], fresh, atol=1e-5, err_msg=split)
        assert list(groups[split]["ids"]) == ids and list(groups[split]["labels"]) == labels


def test_rerun_is_byte_identical_and_cleans_scratch(project, embedded_world):
    embed_images.run()
    assert (project / paths.IMAGES_H5).read_bytes() == (embedded_world / paths.IMAGES_H5).read_bytes()
    assert not any((project / ".cache" / "embed").iterdir())


def _job(project, stop=None):
    """The train split's job of `mdpr embed-images`, as the stage builds it."""
    dataset = load_params("params.yaml", DatasetParams)
    encoder = load_encoder(load_params("params.yaml", ClipParams), "cpu")
    embed_params = load_params("params.yaml", EmbedParams)
    fingerprint = embed.fingerprint(encoder.identity, dataset, embed_params, paths.MANIFEST.read_bytes())
    ids = [r[1] for r in manifest.read_manifest(paths.MANIFEST) if r[0] == "train"]
    return embed.EmbedJob(ids, ImageReader(dataset), encoder, ViewTransform(encoder.preprocess, 32),
                          paths.SCRATCH / "embed" / fingerprint / "train", batch_size=16, stop=stop, progress=False)


@pytest.fixture
def encoded_rows(monkeypatch):
    """How many image views the CLIP encoder encoded: Encoder.encode_image_batch wrapped (it still encodes)."""
    from pipeline.features.clip import Encoder

    encode, count = Encoder.encode_image_batch, [0]

    def counted(self, images):
        count[0] += len(images)
        return encode(self, images)

    monkeypatch.setattr(Encoder, "encode_image_batch", counted)
    return count


def test_resume_encodes_only_the_rest_and_matches_uninterrupted_run(project, embedded_world, encoded_rows):
    (project / paths.IMAGES_H5).unlink()
    partial = _job(project, stop=48)
    partial.run()                                    # an interrupted run: rows 0..47 done, in 3 batches of 16
    assert partial.done_until() == 48 and len(list(partial.scratch.glob("*.json"))) == 3
    encoded_rows[0] = 0
    embed_images.run()
    total = sum(json.loads(paths.CLASSES.read_text())["splits"].values())
    assert encoded_rows[0] == total - 48             # the 48 finished train rows were not encoded again
    assert (project / paths.IMAGES_H5).read_bytes() == (embedded_world / paths.IMAGES_H5).read_bytes()
    assert not partial.scratch.parent.exists()       # the finished run removed its progress


def test_scratch_of_other_inputs_is_not_reused(project):
    stale = _job(project, stop=16)
    stale.run()
    write_params(project, {"embed": {"store_dtype": "float16"}})
    embed_images.run()
    assert stale.scratch.exists()                    # another fingerprint: left alone, not mixed in
    groups, attrs = store.read_h5(paths.IMAGES_H5)
    assert groups["train"]["features"].dtype == np.float16 and attrs["store_dtype"] == "float16"


def _corrupt_one_image(project) -> str:
    image_id = manifest.read_manifest(paths.MANIFEST)[7][1]
    target = paths.SYNTHETIC_IMAGES / image_id
    target.write_bytes(target.read_bytes()[:40])          # a truncated PNG
    return image_id


def test_corrupt_image_names_the_file_and_writes_nothing(project):
    image_id = _corrupt_one_image(project)
    (project / paths.IMAGES_H5).unlink()
    with pytest.raises(UserError, match=f"image {image_id} .*cannot be read.*embed.on_error: skip"):
        embed_images.run()
    assert not (project / paths.IMAGES_H5).exists()


def test_skip_mode_drops_and_lists_unreadable_images(project):
    image_id = _corrupt_one_image(project)
    write_params(project, {"embed": {"on_error": "skip"}})
    embed_images.run()
    groups, _ = store.read_h5(paths.IMAGES_H5)
    assert image_id not in set(groups["train"]["ids"])
    skipped = json.loads(paths.SKIPPED.read_text())["skipped"]
    assert len(skipped) == 1 and skipped[0].startswith(image_id)


def test_worker_count_does_not_change_the_bytes(project, embedded_world, image_readers):
    write_params(project, {"runtime": {"batch_size": 16, "num_workers": 2, "device": "cpu"}})
    assert load_params("params.yaml", RuntimeParams).num_workers == 2
    embed_images.run()
    reads = image_readers()
    assert sorted(set(reads)) == [0, 1] and len(reads) == len(manifest.read_manifest(paths.MANIFEST))
    assert (project / paths.IMAGES_H5).read_bytes() == (embedded_world / paths.IMAGES_H5).read_bytes()
