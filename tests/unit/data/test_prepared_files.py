"""classes.json and manifest.csv checked where they are read; images read back as 8-bit RGB whatever their depth.

    .venv/bin/python -m pytest tests/unit/data/test_prepared_files.py -q
"""
import json

import numpy as np
import pytest
from PIL import Image

from pipeline.core.errors import UserError
from pipeline.data import manifest
from pipeline.data.images import open_rgb

NAMES = ["tiger", "lynx", "owl"]
ROWS = [("train", f"train/{c}_{k}.png", c) for c in range(3) for k in range(4 - c)] + \
    [("test", f"test/{c}.png", c) for c in range(3)]


@pytest.fixture
def prepared(tmp_path):
    manifest.write_manifest(tmp_path / "manifest.csv", ROWS)
    manifest.write_classes(tmp_path / "classes.json", manifest.classes_record(NAMES, ROWS, "folder"))
    return tmp_path


def test_what_prepare_writes_reads_back(prepared):
    classes = manifest.read_classes(prepared / "classes.json")
    assert classes["manifest"]["rows"] == len(ROWS)
    assert manifest.read_manifest(prepared / "manifest.csv", classes) == ROWS
    assert manifest.read_manifest(prepared / "manifest.csv") == ROWS     # checked against the classes.json beside it


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.pop("manifest"), "no manifest"),
    (lambda c: c["names"].pop(), "2 names do not match its class_hash"),
    (lambda c: c["train_counts"].pop(), "one entry per class"),
    (lambda c: c["splits"].update(test=2), "manifest record does not match its split counts"),
    (lambda c: c.update(names="tiger"), "not a list of class names"),
])
def test_a_classes_json_that_still_parses_but_was_cut_or_edited_is_refused(prepared, edit, message):
    path = prepared / "classes.json"
    classes = json.loads(path.read_text())
    edit(classes)
    path.write_text(json.dumps(classes))
    with pytest.raises(UserError, match=message):
        manifest.read_classes(path)


def test_a_manifest_with_the_right_row_count_but_other_content_is_refused(prepared):
    classes = manifest.read_classes(prepared / "classes.json")
    path = prepared / "manifest.csv"
    path.write_text(path.read_text().replace("test/2.png,2", "test/2.png,1"))
    with pytest.raises(UserError, match="content differs from the sha256 classes.json records"):
        manifest.read_manifest(path, classes)


def test_a_manifest_cut_to_its_header_is_refused(prepared):
    classes = manifest.read_classes(prepared / "classes.json")
    path = prepared / "manifest.csv"
    path.write_text("split,id,label\n")
    with pytest.raises(UserError, match=f"0 rows where classes.json records {len(ROWS)}"):
        manifest.read_manifest(path, classes)
    with pytest.raises(UserError, match=f"0 rows where classes.json records {len(ROWS)}"):
        manifest.read_manifest(path)


@pytest.mark.parametrize("mode", ["I;16", "I"])
def test_16_bit_grey_images_are_scaled_to_8_bits(tmp_path, mode):
    grey = np.random.default_rng(0).integers(0, 256, (16, 16)).astype(np.uint8)
    wide = Image.fromarray(grey.astype(np.uint16) * 257)
    wide = wide if mode == "I;16" else wide.convert("I")
    assert wide.mode == mode
    wide.save(tmp_path / "wide.tif")
    Image.fromarray(grey).save(tmp_path / "grey.png")
    assert Image.open(tmp_path / "wide.tif").mode == mode
    expected = np.asarray(open_rgb(tmp_path / "grey.png"))
    assert expected.shape == (16, 16, 3)
    np.testing.assert_array_equal(np.asarray(open_rgb(tmp_path / "wide.tif")), expected)


def test_8_bit_images_are_read_unchanged(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (8, 8, 3)).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(np.asarray(open_rgb(tmp_path / "rgb.png")), pixels)
