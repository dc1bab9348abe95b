"""Datasets: long-tailed profiles, manifests, class groups and the dataset errors."""
import numpy as np
import pytest
from PIL import Image

from pipeline.config.data_params import DatasetParams
from pipeline.core.errors import UserError
from pipeline.data import datasets as data
from pipeline.data import manifest, synthetic


def test_cifar100_lt_profile_counts():
    counts = data.lt_counts(500, 100, 100)
    assert sum(counts) == 10847
    assert counts[0] == 500 and counts[-1] == 5
    assert sum(data.lt_counts(500, 100, 50)) == 12608
    assert sum(data.lt_counts(500, 100, 10)) == 19573
    assert all(a >= b for a, b in zip(counts, counts[1:]))


def test_cifar_lt_rows_subsample_per_class_and_keep_test():
    rng = np.random.default_rng(1)
    train_targets = np.repeat(np.arange(10), 50)
    rng.shuffle(train_targets)
    test_targets = np.repeat(np.arange(10), 7)
    rows = data.cifar_lt_rows(train_targets, test_targets, 50, 10, val_per_class=5, seed=0)
    train = [r for r in rows if r[0] == "train"]
    # the head class would take all 50 images: it keeps 50 - 5 so that val can take 5 unused ones
    assert [sum(1 for r in train if r[2] == c) for c in range(10)] == [45] + data.lt_counts(50, 10, 10)[1:]
    assert all(train_targets[int(r[1].split("/")[1])] == r[2] for r in train)
    assert sum(1 for r in rows if r[0] == "test") == 70
    assert rows == data.cifar_lt_rows(train_targets, test_targets, 50, 10, val_per_class=5, seed=0)
    assert rows != data.cifar_lt_rows(train_targets, test_targets, 50, 10, val_per_class=5, seed=1)


def test_synthetic_manifest_is_deterministic_and_long_tailed():
    params = DatasetParams(num_classes=20, imbalance_factor=50)
    spec = data.build_dataset(params)
    assert spec == data.build_dataset(params)
    counts = spec.train_counts()
    assert counts == data.lt_counts(200, 20, 50)
    groups = set(manifest.groups_of(counts, 100, 20))
    assert groups == {"many", "medium", "few"}
    assert len(set(spec.names)) == 20 and spec.names[0] == "red circle"
    assert len(set(synthetic.class_names(96))) == 96


def test_synthetic_images_are_byte_identical(tmp_path):
    rows = [("train", "train/a.png", 0), ("test", "test/b.png", 1)]
    names = synthetic.class_names(2)
    synthetic.write_images(tmp_path / "one", rows, names, 32, seed=3)
    synthetic.write_images(tmp_path / "two", rows, names, 32, seed=3)
    for _s, image_id, _l in rows:
        assert (tmp_path / "one" / image_id).read_bytes() == (tmp_path / "two" / image_id).read_bytes()
        assert Image.open(tmp_path / "one" / image_id).size == (32, 32)


def test_groups_thresholds():
    assert manifest.groups_of([101, 100, 20, 19], 100, 20) == ["many", "medium", "medium", "few"]


def _folder(root, classes):
    for name, n in classes.items():
        (root / name).mkdir(parents=True)
        for k in range(n):
            Image.new("RGB", (8, 8), (k * 20, 0, 0)).save(root / name / f"{k}.png")


def test_folder_dataset_holds_out_a_test_split(tmp_path):
    _folder(tmp_path, {"golden_retriever": 10, "tabby_cat": 5})
    spec = data.build_dataset(DatasetParams(name="folder", root=str(tmp_path)))
    assert spec.names == ["golden retriever", "tabby cat"]
    assert sum(1 for r in spec.rows if r[0] == "test") == 3  # 20% of each class: 2 + 1
    assert spec.train_counts() == [6, 2]  # 8 and 4 left, then a balanced val of min(10, 4 // 2) = 2 per class


def test_folder_dataset_errors(tmp_path):
    _folder(tmp_path, {"a": 3})
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="class folder\\(s\\) with no image: empty"):
        data.build_dataset(DatasetParams(name="folder", root=str(tmp_path)))
    with pytest.raises(UserError, match="not a directory"):
        data.build_dataset(DatasetParams(name="folder", root=str(tmp_path / "missing")))


def test_class_without_training_image_is_an_error(tmp_path):
    _folder(tmp_path, {"a": 3, "b": 2})
    (tmp_path / "split.csv").write_text("path,split\nb/0.png,test\nb/1.png,val\n")
    with pytest.raises(UserError, match="no training image \\(b\\)"):
        data.build_dataset(DatasetParams(name="folder", root=str(tmp_path), split_file="split.csv"))


def test_imagenet_lt_without_train_list_says_where_to_get_it(tmp_path):
    with pytest.raises(UserError, match="classifier-balancing"):
        data.build_dataset(DatasetParams(name="imagenet-lt", root=str(tmp_path)))


def test_places_lt_reports_missing_images(tmp_path):
    with pytest.raises(UserError, match="missing under .*first: train/airfield"):
        data.build_dataset(DatasetParams(name="places-lt", root=str(tmp_path)))


def test_cifar_without_files_or_network_is_clear(tmp_path):
    with pytest.raises(UserError, match="dataset.download: true"):
        data.build_dataset(DatasetParams(name="cifar100-lt", root=str(tmp_path)))


def test_manifest_round_trip_with_awkward_ids(tmp_path):
    rows = [("train", "dir, with comma/x.png", 0), ("test", 'q"uote.png', 1)]
    manifest.write_manifest(tmp_path / "m.csv", rows)
    assert manifest.read_manifest(tmp_path / "m.csv", manifest.classes_record(["a", "b"], rows, "folder")) == rows
