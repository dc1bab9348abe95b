"""HDF5 caches: round trip, byte-identical rewrite, and the mismatch / truncation / NaN errors."""
import numpy as np
import pytest

from pipeline.core.errors import UserError
from pipeline.features import store


def _groups():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(5, 4)).astype(np.float32)
    return {"train": {"features": feats / np.linalg.norm(feats, axis=1, keepdims=True),
                      "labels": np.arange(5, dtype=np.int64), "ids": np.array([f"img{i}.png" for i in range(5)],
                                                                               dtype=object)}}


ATTRS = {"model": "mdpr-tiny", "pretrained": "none(seed=0)", "class_hash": "abc"}


def test_round_trip_and_identical_rewrite(tmp_path):
    path = tmp_path / "images.h5"
    store.write_h5(path, _groups(), ATTRS)
    first = path.read_bytes()
    store.write_h5(path, _groups(), ATTRS)
    assert path.read_bytes() == first
    groups, attrs = store.read_h5(path, expect={"model": "mdpr-tiny"})
    np.testing.assert_array_equal(groups["train"]["features"], _groups()["train"]["features"])
    assert list(groups["train"]["ids"]) == [f"img{i}.png" for i in range(5)]
    assert attrs["schema_version"] == store.SCHEMA_VERSION and attrs["class_hash"] == "abc"
    assert not list(tmp_path.glob(".*tmp*"))


def test_cache_from_another_model_is_refused(tmp_path):
    path = tmp_path / "images.h5"
    store.write_h5(path, _groups(), ATTRS)
    with pytest.raises(UserError, match="made with model: mdpr-tiny but the current inputs need model: ViT-B-16.*"
                                        "mdpr embed-images"):
        store.read_h5(path, expect={"model": "ViT-B-16"})
    with pytest.raises(UserError, match="made with pretrained: none, clip.seed: 0 but the current inputs need "
                                        "pretrained: a checkpoint file with sha256:0123456789abcdef..."):
        store.read_h5(path, expect={"pretrained": "sha256:0123456789abcdef" + "f" * 48})


def test_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "images.h5"
    store.write_h5(path, _groups(), ATTRS)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(UserError, match="truncated or not a valid feature cache"):
        store.read_h5(path)


def test_nan_features_are_refused(tmp_path):
    groups = _groups()
    groups["train"]["features"][2, 1] = np.nan
    store.write_h5(tmp_path / "images.h5", groups, ATTRS)
    with pytest.raises(UserError, match="train/features holds NaN or infinite values"):
        store.read_h5(tmp_path / "images.h5")


def test_failed_write_leaves_previous_file(tmp_path):
    path = tmp_path / "images.h5"
    store.write_h5(path, _groups(), ATTRS)
    before = path.read_bytes()
    with pytest.raises(TypeError):
        store.write_h5(path, {"train": {"bad": np.array([{1: 2}], dtype=object)}}, ATTRS)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".*tmp*"))
