"""Every dataset kind has a balanced val split that is never test: generated, taken from unused CIFAR training
images, official, given in a split file / features file, or carved from train."""
import numpy as np
import pytest
from PIL import Image

from pipeline.config.data_params import DatasetParams
from pipeline.core.errors import UserError
from pipeline.data import datasets as data
from pipeline.data.splits import carve_val


def split_ids(rows) -> dict[str, set]:
    return {split: {(i, label) for s, i, label in rows if s == split} for split in ("train", "val", "test")}


def val_per_class(rows, num_classes) -> list[int]:
    return [sum(1 for s, _i, label in rows if s == "val" and label == c) for c in range(num_classes)]


def assert_val_is_balanced_and_never_test(rows, num_classes, per_class):
    ids = {split: {i for i, _label in members} for split, members in split_ids(rows).items()}
    assert val_per_class(rows, num_classes) == [per_class] * num_classes
    assert not ids["val"] & ids["test"] and not ids["val"] & ids["train"]


def folder(root, classes):
    for name, n in classes.items():
        (root / name).mkdir(parents=True)
        for k in range(n):
            Image.new("RGB", (8, 8), (k * 20, 0, 0)).save(root / name / f"{k}.png")


def test_synthetic_generates_val_images():
    spec = data.build_dataset(DatasetParams(num_classes=4, val_per_class=3))
    assert_val_is_balanced_and_never_test(spec.rows, 4, 3)


def test_cifar_val_comes_from_the_training_images_the_long_tailed_subset_leaves_out():
    rng = np.random.default_rng(1)
    train_targets = np.repeat(np.arange(10), 50)
    rng.shuffle(train_targets)
    rows = data.cifar_lt_rows(train_targets, np.repeat(np.arange(10), 7), 50, 10, val_per_class=5, seed=0)
    assert_val_is_balanced_and_never_test(rows, 10, 5)
    assert all(i.startswith("train/") and train_targets[int(i[6:])] == label for s, i, label in rows if s == "val")
    # every class but the head keeps the standard subset: the first n_i of its seeded shuffle, as before val existed
    reference = np.random.default_rng(0)
    for label, n in enumerate(data.lt_counts(50, 10, 10)):
        standard = sorted(reference.permutation(np.flatnonzero(train_targets == label))[:n].tolist())
        kept = [int(i[6:]) for s, i, c in rows if s == "train" and c == label]
        assert kept == (standard if label else kept) and len(kept) == (45 if label == 0 else n)


def test_cifar_refuses_more_val_images_than_a_class_has():
    with pytest.raises(UserError, match="not enough for dataset.val_per_class = 50"):
        data.cifar_lt_rows(np.repeat(np.arange(2), 50), np.arange(2), 50, 2, val_per_class=50, seed=0)


def test_folder_carves_a_balanced_val_from_train(tmp_path):
    folder(tmp_path, {"a": 30, "b": 12, "c": 6})
    spec = data.build_dataset(DatasetParams(name="folder", root=str(tmp_path), val_per_class=10))
    # test: 20% per class (6, 2, 1); train left 24, 10, 5; val: min(10, 5 // 2) = 2 of every class
    assert_val_is_balanced_and_never_test(spec.rows, 3, 2)
    assert spec.train_counts() == [22, 8, 3]
    again = data.build_dataset(DatasetParams(name="folder", root=str(tmp_path), val_per_class=10))
    assert again.rows == spec.rows  # deterministic (dataset.seed)


def test_folder_split_file_without_val_is_carved_and_with_val_is_kept(tmp_path):
    folder(tmp_path, {"a": 6, "b": 6})
    (tmp_path / "split.csv").write_text("path,split\na/0.png,test\nb/0.png,test\n")
    spec = data.build_dataset(DatasetParams(name="folder", root=str(tmp_path), split_file="split.csv"))
    assert_val_is_balanced_and_never_test(spec.rows, 2, 2)
    (tmp_path / "split.csv").write_text("path,split\na/0.png,test\nb/0.png,test\na/1.png,val\nb/1.png,val\n")
    spec = data.build_dataset(DatasetParams(name="folder", root=str(tmp_path), split_file="split.csv"))
    assert [i for s, i, _ in spec.rows if s == "val"] == ["a/1.png", "b/1.png"] and spec.train_counts() == [4, 4]


def test_a_class_with_one_training_image_leaves_no_balanced_val():
    rows = [("train", "x0", 0), ("train", "x1", 0), ("train", "y0", 1), ("test", "t", 0)]
    with pytest.raises(UserError, match="no val split given and class 'dog' has 1 training image.*add a val split"):
        carve_val(rows, ["cat", "dog"], 5, 0, "add a val split to the file")


def test_carving_keeps_the_order_of_every_split_and_moves_only_train_rows():
    rows = [("train", f"c{k}", k % 2) for k in range(8)] + [("test", "t0", 0), ("test", "t1", 1)]
    carved = carve_val(rows, ["a", "b"], 1, 3, "fix")
    assert [r for r in carved if r[0] == "test"] == rows[-2:]
    assert [s for s, _i, _l in carved] == ["train"] * 6 + ["val"] * 2 + ["test"] * 2
    val = {i for s, i, _ in carved if s == "val"}
    assert [i for s, i, _ in carved if s == "train"] == [i for _s, i, _ in rows[:8] if i not in val]
