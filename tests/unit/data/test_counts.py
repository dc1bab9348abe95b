"""Real class frequencies (dataset.train_counts_file, an import file's train_counts), group thresholds as params,
and the lineage rule for the files a dataset reads."""
import json

import numpy as np
import pytest
from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

from pipeline.config.data_params import DatasetParams
from pipeline.core import paths
from pipeline.core.errors import UserError
from pipeline.data.counts import read_counts_file
from pipeline.data.sources import source_path
from stages import prepare
from tests.helpers.worlds import REPO, write_params

IMAGENET_LT_FREQUENCIES = REPO / "data" / "splits" / "ImageNet_LT_train_cls_freq.json"
NAMES = ["tabby cat", "golden retriever", "red fox"]


def write_import(path, names, per_class=2, d=4, **extra):
    """A features file with `per_class` train, val and test images of every class (random features)."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(len(names)), per_class)
    arrays = {f"{split}_{key}": value for split in ("train", "val", "test")
              for key, value in (("features", rng.normal(size=(len(labels), d)).astype(np.float32)),
                                 ("labels", labels))}
    np.savez(path, class_names=np.array(names), **arrays, **extra)
    return path


def prepared(tmp_path, monkeypatch, **dataset) -> dict:
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path, {"dataset": {"name": "features", "root": "feats.npz", "features_file": "feats.npz",
                                        **dataset}})
    prepare.run()
    return json.loads(paths.CLASSES.read_text())


def test_imagenet_lt_frequencies_give_the_standard_groups_to_a_features_import(tmp_path, monkeypatch):
    write_import(tmp_path / "feats.npz", list(IMAGENET_CLASSNAMES), per_class=1)  # a 1-shot import
    classes = prepared(tmp_path, monkeypatch, train_counts_file=str(IMAGENET_LT_FREQUENCIES))
    assert [classes["groups"].count(g) for g in ("many", "medium", "few")] == [385, 479, 136]
    assert sum(classes["train_counts"]) == 115846 and classes["splits"]["train"] == 1000
    assert classes["train_counts_source"] == f"dataset.train_counts_file {IMAGENET_LT_FREQUENCIES}"


def test_without_frequencies_the_split_counts_are_used(tmp_path, monkeypatch):
    write_import(tmp_path / "feats.npz", list(IMAGENET_CLASSNAMES), per_class=1)
    classes = prepared(tmp_path, monkeypatch)
    assert classes["groups"] == ["few"] * 1000 and classes["train_counts_source"] == "train split"


def test_an_import_file_may_carry_its_train_counts_and_the_counts_file_wins(tmp_path, monkeypatch):
    write_import(tmp_path / "feats.npz", NAMES, train_counts=np.array([500, 50, 5]))
    classes = prepared(tmp_path, monkeypatch)
    assert classes["train_counts"] == [500, 50, 5] and classes["groups"] == ["many", "medium", "few"]
    assert classes["train_counts_source"] == "train_counts of feats.npz"
    (tmp_path / "counts.json").write_text(json.dumps([7, 70, 700]))
    classes = prepared(tmp_path, monkeypatch, root=".", train_counts_file="counts.json")
    assert classes["train_counts"] == [7, 70, 700] and classes["groups"] == ["few", "medium", "many"]


def test_group_thresholds_are_dataset_params(tmp_path, monkeypatch):
    write_import(tmp_path / "feats.npz", NAMES, train_counts=np.array([500, 50, 5]))
    classes = prepared(tmp_path, monkeypatch, many_above=40, few_below=4)
    assert classes["groups"] == ["many", "many", "medium"]
    assert classes["group_thresholds"] == {"many_above": 40, "few_below": 4}


@pytest.mark.parametrize("name, content", [
    ("c.json", json.dumps([3, 2, 1])),
    ("c.json", json.dumps({"Red_Fox": 1, "tabby cat": 3, "golden retriever": 2})),
    ("c.csv", "label,count\n2,1\n0,3\n1,2\n"),
    ("c.csv", "class,count\nred fox,1\ngolden retriever,2\ntabby cat,3\n"),
])
def test_count_file_formats(tmp_path, name, content):
    (tmp_path / name).write_text(content)
    assert read_counts_file(tmp_path / name, NAMES) == [3, 2, 1]


@pytest.mark.parametrize("name, content, names, message", [
    ("c.json", "[3, 2]", NAMES, "2 counts for 3 classes"),
    ("c.json", "[3, 0, 1]", NAMES, "every count must be >= 1"),
    ("c.json", "[3, 2.5, 1]", NAMES, "2.5 is not a non-negative integer"),
    ("c.json", '{"tabby cat": 3, "wolf": 1, "golden retriever": 2}', NAMES, "1 class.*missing.*red fox.*wolf"),
    ("c.json", '{"missile": 3, "cat": 1}', ["missile", "missile", "cat"], "'missile' repeats.*by label"),
    ("c.csv", "name,n\na,1\n", NAMES, "needs a header with a `count` column"),
    ("c.csv", "label,count\n0,1\n0,2\n1,3\n", NAMES, "labels must be 0..2, each once"),
])
def test_bad_count_files_are_one_line(tmp_path, name, content, names, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(UserError, match=message):
        read_counts_file(tmp_path / name, names)


def test_files_outside_the_root_and_data_splits_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "root").mkdir()
    params = DatasetParams(root="root", features_file="elsewhere/feats.h5", train_counts_file="elsewhere/c.json")
    with pytest.raises(UserError, match="features_file = elsewhere/feats.h5 lies outside dataset.root .*DVC would "
                                        "not see it change"):
        source_path(params, "features_file")
    with pytest.raises(UserError, match="outside dataset.root or data/splits/"):
        source_path(params, "train_counts_file", shipped=True)
    inside = DatasetParams(root="root", features_file="root/sub/feats.h5",
                           train_counts_file=str(IMAGENET_LT_FREQUENCIES))
    assert source_path(inside, "features_file").as_posix() == "root/sub/feats.h5"
    assert source_path(inside, "train_counts_file", shipped=True) == IMAGENET_LT_FREQUENCIES
    with pytest.raises(UserError, match="outside dataset.root \\("):
        source_path(inside, "train_counts_file")  # a features file must be under the root (embed_images reads it)
