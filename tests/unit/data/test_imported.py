"""Bring-your-own features: import a user's NPZ / HDF5 and run the rest of the pipeline on it."""
import json

import h5py
import numpy as np
import pytest

from pipeline.core import paths
from pipeline.core.errors import UserError
from pipeline.data.imported import read_features_file
from pipeline.features import store
from stages import confusion, embed_classes, embed_images, embed_library, evaluate, library, prepare, train
from tests.helpers.worlds import write_params


def _user_arrays(world):
    """Features as a user would bring them: from the same tiny CLIP, but not normalised."""
    groups, _ = store.read_h5(world / paths.IMAGES_H5)
    text, _ = store.read_h5(world / paths.CLASSES_H5)
    arrays = {f"{split}_{name}": groups[split][name] * (3.0 if name == "features" else 1)
              for split in ("train", "val", "test") for name in ("features", "labels")}
    arrays["class_names"] = np.array(list(text[""]["names"]))
    arrays["class_features"] = text[""]["features"]
    return arrays


def test_npz_import_end_to_end(tmp_path, embedded_world, monkeypatch):
    arrays = _user_arrays(embedded_world)
    np.savez(tmp_path / "feats.npz", **arrays)
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path, {"dataset": {"name": "features", "root": "feats.npz", "features_file": "feats.npz"}})
    for stage in (prepare, embed_images, embed_classes, confusion, library, embed_library, train, evaluate):
        stage.run()
    groups, attrs = store.read_h5(paths.IMAGES_H5)
    expected = arrays["train_features"] / np.linalg.norm(arrays["train_features"], axis=1, keepdims=True)
    np.testing.assert_allclose(groups["train"]["features"], expected, atol=1e-6)
    np.testing.assert_array_equal(groups["test"]["labels"], arrays["test_labels"])
    text, _ = store.read_h5(paths.CLASSES_H5)
    np.testing.assert_allclose(text[""]["features"], arrays["class_features"], atol=1e-6)
    metrics = json.loads(paths.METRICS.read_text())
    assert {"zero_shot", "mdpr"} <= set(metrics) and attrs["dataset"] == "features"
    assert not list((tmp_path / "artifacts" / "data" / "images").glob("*.png"))


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def test_hdf5_layout_is_read_like_npz(tmp_path, embedded_world):
    arrays = _user_arrays(embedded_world)
    train_ids = [f"photo_{k}.jpg" for k in range(len(arrays["train_labels"]))]
    with h5py.File(tmp_path / "feats.h5", "w") as handle:
        handle.attrs["model"] = "mdpr-tiny"
        handle.create_dataset("class_names", data=arrays["class_names"].astype(object), dtype=h5py.string_dtype())
        handle.create_dataset("class_features", data=3 * arrays["class_features"])
        handle.create_dataset("train/ids", data=np.array(train_ids, dtype=object), dtype=h5py.string_dtype())
        for split in ("train", "test"):
            handle.create_dataset(f"{split}/features", data=arrays[f"{split}_features"])
            handle.create_dataset(f"{split}/labels", data=arrays[f"{split}_labels"])
    imported = read_features_file(tmp_path / "feats.h5")
    np.savez(tmp_path / "feats.npz", **arrays)
    from_npz = read_features_file(tmp_path / "feats.npz")
    assert set(imported.splits) == {"train", "test"} and imported.attrs == {"model": "mdpr-tiny"}
    assert imported.class_names == list(arrays["class_names"]) == from_npz.class_names
    np.testing.assert_allclose(imported.class_features, _unit(arrays["class_features"]), atol=1e-6)
    for split in ("train", "test"):
        values = imported.splits[split]
        np.testing.assert_allclose(values["features"], _unit(arrays[f"{split}_features"]), atol=1e-6)
        np.testing.assert_array_equal(values["features"], from_npz.splits[split]["features"])
        np.testing.assert_array_equal(values["labels"], arrays[f"{split}_labels"])
        assert values["labels"].dtype == np.int64
    assert list(imported.splits["train"]["ids"]) == train_ids
    assert list(imported.splits["test"]["ids"]) == [f"test/{k}" for k in range(len(arrays["test_labels"]))]


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("class_names"), "no class_names"),
    (lambda a: a.pop("test_features"), "no test split"),
    (lambda a: a.__setitem__("train_labels", a["train_labels"] + 100), "labels must be integers in 0..5"),
    (lambda a: a["train_features"].__setitem__((0, 0), np.nan), "NaN or infinite"),
])
def test_bad_files_are_refused_clearly(tmp_path, embedded_world, change, message):
    arrays = _user_arrays(embedded_world)
    change(arrays)
    np.savez(tmp_path / "feats.npz", **arrays)
    with pytest.raises(UserError, match=message):
        read_features_file(tmp_path / "feats.npz")


def test_width_mismatch_with_the_text_encoder(tmp_path, embedded_world, monkeypatch):
    arrays = _user_arrays(embedded_world)
    for key in [k for k in arrays if k.endswith("_features")]:
        arrays[key] = np.concatenate([arrays[key], arrays[key]], axis=-1)  # 128-d, the tiny CLIP is 64-d
    np.savez(tmp_path / "feats.npz", **arrays)
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path, {"dataset": {"name": "features", "root": "feats.npz", "features_file": "feats.npz"}})
    prepare.run()
    with pytest.raises(UserError, match="features are 128-d but clip.model mdpr-tiny is 64-d"):
        embed_images.run()


def test_a_file_without_val_gets_a_carved_val_split_in_images_h5(tmp_path, embedded_world, monkeypatch):
    arrays = {k: v for k, v in _user_arrays(embedded_world).items() if not k.startswith("val_")}
    np.savez(tmp_path / "feats.npz", **arrays)
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path, {"dataset": {"name": "features", "root": "feats.npz", "features_file": "feats.npz",
                                        "val_per_class": 2}})
    prepare.run()
    embed_images.run()
    groups, _ = store.read_h5(paths.IMAGES_H5)
    val_ids = [int(i.split("/")[1]) for i in groups["val"]["ids"]]  # train/K: row K of the file's train split
    assert np.bincount(groups["val"]["labels"]).tolist() == [2] * 6
    expected = arrays["train_features"][val_ids] / np.linalg.norm(arrays["train_features"][val_ids], axis=1,
                                                                  keepdims=True)
    np.testing.assert_allclose(groups["val"]["features"], expected, atol=1e-6)
    assert not set(groups["val"]["ids"]) & set(groups["train"]["ids"])
    assert len(groups["train"]["ids"]) + 12 == len(arrays["train_labels"])


def test_a_features_import_never_builds_or_loads_an_encoder(tmp_path, monkeypatch):
    import open_clip

    def refuse(*args, **kwargs):
        raise AssertionError("a features import must not build or load an image encoder")

    monkeypatch.setattr(open_clip, "create_model_and_transforms", refuse)
    monkeypatch.setattr(open_clip, "create_model", refuse)
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 3)
    arrays = {f"{s}_{k}": v for s in ("train", "val", "test")
              for k, v in (("features", rng.normal(size=(9, 512)).astype(np.float32)), ("labels", labels))}
    np.savez(tmp_path / "feats.npz", class_names=np.array(["cat", "dog", "fox"]), model=np.array("ViT-B-32"),
             pretrained=np.array("openai"), **arrays)
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path, {"dataset": {"name": "features", "root": "feats.npz", "features_file": "feats.npz"},
                            "clip": {"model": "ViT-B-32", "pretrained": "openai"}})  # weights absent offline
    prepare.run()
    embed_images.run()
    _, attrs = store.read_h5(paths.IMAGES_H5)
    assert (attrs["model"], attrs["pretrained"], attrs["image_size"]) == ("ViT-B-32", "openai", "[224, 224]")


@pytest.mark.parametrize("file_value, accepted", [("none", True), ("openai", False)])
def test_the_file_pretrained_attribute_is_compared_as_the_user_writes_it(tmp_path, embedded_world, monkeypatch,
                                                                         file_value, accepted):
    arrays = _user_arrays(embedded_world)
    np.savez(tmp_path / "feats.npz", model=np.array("mdpr-tiny"), pretrained=np.array(file_value), **arrays)
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path, {"dataset": {"name": "features", "root": "feats.npz", "features_file": "feats.npz"}})
    prepare.run()
    if accepted:
        embed_images.run()
        return
    with pytest.raises(UserError, match="made with pretrained: openai but the clip params say pretrained: none; set "
                                        "clip.pretrained: openai") as err:
        embed_images.run()
    assert "seed=" not in str(err.value)


@pytest.mark.parametrize("layout, typo, known", [
    ("npz", "class_feature", "class_names, class_features, train_counts, model, pretrained, train_features, "),
    ("h5", "class_feature", "class_names, class_features, train_counts, train, val, test."),
    ("h5", "train/label", "train/features, train/labels, train/ids."),
    ("h5", "attribute pretrianed", "attribute model, attribute pretrained."),
])
def test_unknown_keys_are_refused_with_the_known_ones(tmp_path, embedded_world, layout, typo, known):
    arrays = _user_arrays(embedded_world)
    path = tmp_path / f"feats.{layout}"
    if layout == "npz":
        np.savez(path, class_feature=arrays.pop("class_features"), **arrays)
    else:
        with h5py.File(path, "w") as handle:
            handle.create_dataset("class_names", data=arrays["class_names"].astype(object), dtype=h5py.string_dtype())
            for split in ("train", "test"):
                handle.create_dataset(f"{split}/features", data=arrays[f"{split}_features"])
                handle.create_dataset(f"{split}/labels", data=arrays[f"{split}_labels"])
            if typo.startswith("attribute"):
                handle.attrs["pretrianed"] = "openai"
            else:
                handle.create_dataset(typo, data=np.zeros(3))
    with pytest.raises(UserError, match=f"unknown key\\(s\\) {typo}; known keys: {known}"):
        read_features_file(path)
