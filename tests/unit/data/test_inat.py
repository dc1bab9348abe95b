"""dataset inat2018 on a miniature in the official format: labels by category id, val2018 as test, val drawn from
train where a class is large enough, groups by the official counts, taxonomy for the prompts, clear refusals."""
from __future__ import annotations

import json

import pytest

from pipeline.config.data_params import DatasetParams
from pipeline.core.errors import UserError
from pipeline.data.datasets import build_dataset
from pipeline.library.prompts import load_template
from tests.helpers.inat import FIELDS, write_inat


@pytest.fixture
def inat(tmp_path):
    return tmp_path, write_inat(tmp_path)


def test_splits_labels_val_rule_and_taxonomy(inat):
    root, categories = inat
    spec = build_dataset(DatasetParams(name="inat2018", root=str(root), val_per_class=1))
    assert spec.names == [c["name"] for c in categories]  # ids 3, 5, 7, 11 -> labels 0..3
    train = {label: 0 for label in range(4)}
    for split, _id, label in spec.rows:
        train[label] += split == "train"
    counts_by_id = {7: 12, 3: 7, 11: 3, 5: 1}  # write_inat's train counts, by category id
    official = [counts_by_id[c["id"]] for c in categories]
    assert spec.frequencies == official  # groups and prior: the official counts, before val is drawn
    val = [label for split, _id, label in spec.rows if split == "val"]
    assert sorted(val) == [label for label, n in enumerate(official) if n >= 5]  # 1 val image where n >= 5 x 1
    assert [train[label] for label in range(4)] == [n - (n >= 5) for n in official]
    assert sum(split == "test" for split, _, _ in spec.rows) == 8
    assert spec.taxonomy == [" > ".join(c[key] for key in FIELDS[:-1]) for c in categories]
    assert "2 class(es) too small" in spec.notes[0] and "Amanita muscaria" in spec.notes[0]
    assert all((root / image_id).is_file() for _split, image_id, _label in spec.rows)


def test_taxonomy_goes_into_the_prompt_only_when_given():
    template = load_template("general_appearance")
    plain = template.messages("Abies concolor", None, 0, 1)
    with_taxonomy = template.messages("Abies concolor", None, 0, 1, taxonomy="Plantae > Tracheophyta")
    assert "Plantae > Tracheophyta" in with_taxonomy[1]["content"]
    assert "taxonomy" not in plain[1]["content"] and with_taxonomy[1]["content"].startswith(plain[1]["content"])


def test_obfuscated_categories_and_missing_images_are_refused(inat):
    root, _ = inat
    train = json.loads((root / "train2018.json").read_text())
    (root / "train2018.json").write_text(json.dumps({**train, "categories": [{"id": c["id"], "name": str(c["id"])}
                                                                            for c in train["categories"]]}))
    with pytest.raises(UserError, match="categories.json"):
        build_dataset(DatasetParams(name="inat2018", root=str(root)))
    (root / "categories.json").write_text(json.dumps(train["categories"]))  # the un-obfuscated list, beside them
    assert build_dataset(DatasetParams(name="inat2018", root=str(root), val_per_class=1)).names[0] == "Spinus tristis"
    next(root.rglob("*.jpg")).unlink()
    with pytest.raises(UserError, match="missing under"):
        build_dataset(DatasetParams(name="inat2018", root=str(root), val_per_class=1))
