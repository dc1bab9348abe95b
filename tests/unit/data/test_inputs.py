"""Dataset inputs before prepare: every missing piece named at once with where it comes from, a sample of the root.

    .venv/bin/python -m pytest tests/unit/data/test_inputs.py -q
"""
from pathlib import Path

import pytest

from pipeline.config.data_params import DatasetParams
from pipeline.core.errors import UserError
from pipeline.core.findings import MISSING, NOTE, OK
from pipeline.data import inputs
from tests.helpers.worlds import inside

IMAGENET_SAMPLE = "train/n01440764/n01440764_762.JPEG"  # the first line of the shipped ImageNet_LT_val.txt


def by_name(findings) -> dict:
    return {finding.name: finding for finding in findings}


def touch_sample(root: Path, params: DatasetParams) -> list[str]:
    """Empty files at every path of the root sample (what the check looks for; prepare opens them later)."""
    sample = [rel for path in inputs.split_lists(params).values() if path and path.is_file()
              for rel in inputs._sample(path)]
    for rel in sample:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).touch()
    return sample


def test_imagenet_lt_names_the_root_and_the_train_list_at_once(tmp_path):
    with inside(tmp_path):
        params = DatasetParams(name="imagenet-lt", root="data/raw/imagenet",
                               train_list="data/splits/ImageNet_LT_train.txt")
        found = by_name(inputs.dataset_findings(params))
        assert found["dataset root"].status == MISSING and "data/raw/imagenet not found" in found["dataset root"].detail
        assert "image-net.org" in found["dataset root"].fix and "train/<wnid>/" in found["dataset root"].fix
        assert found["train list"].status == MISSING and "classifier-balancing" in found["train list"].fix
        assert found["val split file"].status == OK and "20,000 images" in found["val split file"].detail
        with pytest.raises(UserError) as err:
            inputs.require_dataset(params)
    message = str(err.value)
    assert "\n" not in message and "dataset root:" in message and "train list:" in message
    assert "Errno" not in message and "`mdpr check`" in message


def test_a_root_holding_the_sampled_images_is_ok_and_a_partial_one_names_the_first_missing(tmp_path):
    root = tmp_path / "imagenet"
    params = DatasetParams(name="imagenet-lt", root=str(root))
    sample = touch_sample(root, params)
    assert len(sample) == 2 * inputs.SAMPLE_PER_SPLIT and IMAGENET_SAMPLE in sample
    assert by_name(inputs.dataset_findings(params))["dataset root"].status == OK
    (root / IMAGENET_SAMPLE).unlink()
    finding = by_name(inputs.dataset_findings(params))["dataset root"]
    assert finding.status == MISSING and f"1 of {len(sample)}" in finding.detail and IMAGENET_SAMPLE in finding.detail


def test_a_root_with_only_its_readme_holds_none_of_the_sample(tmp_path):
    (tmp_path / "places365").mkdir()
    (tmp_path / "places365" / "README.md").write_text("what goes here\n")
    finding = by_name(inputs.dataset_findings(DatasetParams(name="places-lt", root=str(tmp_path / "places365"))))
    assert finding["dataset root"].status == MISSING
    assert f"holds none of {3 * inputs.SAMPLE_PER_SPLIT} images" in finding["dataset root"].detail
    assert "places2.csail.mit.edu" in finding["dataset root"].fix


def test_a_train_list_dvc_would_not_see_is_missing(tmp_path):
    outside = tmp_path / "elsewhere" / "ImageNet_LT_train.txt"
    outside.parent.mkdir()
    outside.write_text(f"{IMAGENET_SAMPLE} 0\n")
    params = DatasetParams(name="imagenet-lt", root=str(tmp_path / "imagenet"), train_list=str(outside))
    finding = by_name(inputs.dataset_findings(params))["train list"]
    assert finding.status == MISSING and "lies outside dataset.root or data/splits/" in finding.detail


def test_cifar_archive_absent_present_and_a_download_that_cannot_start(tmp_path, monkeypatch):
    params = DatasetParams(name="cifar100-lt", root=str(tmp_path))
    [absent] = inputs.dataset_findings(params)
    assert absent.status == MISSING and "cifar-100-python/train not found" in absent.detail
    assert "dataset.download: true" in absent.fix
    downloading = DatasetParams(name="cifar100-lt", root=str(tmp_path), download=True)
    assert inputs.dataset_findings(downloading)[0].status == NOTE  # not probed: prepare will try
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")  # a refused connection stands for no internet
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    [offline] = inputs.dataset_findings(downloading, probe=True)
    assert offline.status == MISSING and "cannot start (" in offline.detail and "Errno" not in offline.detail
    for name in ("train", "test", "meta"):
        (tmp_path / "cifar-100-python").mkdir(exist_ok=True)
        (tmp_path / "cifar-100-python" / name).touch()
    assert inputs.dataset_findings(params)[0].status == OK


def test_image_counts_before_prepare():
    assert inputs.image_counts(DatasetParams(name="places-lt")) == {"train": 62500, "val": 7300, "test": 36500}
    imagenet = inputs.image_counts(DatasetParams(name="imagenet-lt", root="data/raw/imagenet"))
    assert imagenet == {"train": 115846, "val": 20000, "test": 50000}  # train: the shipped per-class counts
    cifar = inputs.image_counts(DatasetParams(name="cifar100-lt", imbalance_factor=100.0))
    assert cifar == {"train": 10847, "val": 1000, "test": 10000}  # CIFAR-100-LT IF100's standard 10,847
    assert inputs.image_counts(DatasetParams(name="folder")) is None


def test_a_dataset_kind_without_its_own_check_still_has_its_root_checked(tmp_path):
    params = DatasetParams(root=str(tmp_path / "nowhere"))
    object.__setattr__(params, "name", "some-new-kind")   # a kind added later (frozen dataclass, no validation)
    [root] = inputs.dataset_findings(params)
    assert root.status == MISSING and "not found" in root.detail
    (tmp_path / "nowhere").mkdir()
    assert inputs.dataset_findings(params)[0].status == OK
