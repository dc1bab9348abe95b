"""The `file` backend says what it did not import: unmatched keys, descriptions beyond the slots, classes given
offline text; refuses a key given twice; matches names across Unicode composition.

    .venv/bin/python -m pytest tests/unit/library/test_descriptor_summary.py -q
"""
import json
import unicodedata

import pytest

from pipeline.config.library_params import LibraryParams, LLMParams
from pipeline.config.schema import from_dict
from pipeline.core.errors import UserError
from pipeline.library.build import build_library, format_summary
from pipeline.library.descriptions import normalise_name

FILE_LLM = from_dict(LLMParams, {"backend": "file"})


def build_from(tmp_path, content: dict | str, names: list[str], **library):
    path = tmp_path / "descriptors.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content, ensure_ascii=False))
    lib = from_dict(LibraryParams, {"file": str(path), **library})
    return build_library(names, [None] * len(names), FILE_LLM, lib, progress=False)


def describe(name: str, count: int) -> list[str]:
    return [f"A {name} seen from side {k}." for k in range(count)]


@pytest.mark.parametrize("content, key", [
    ('{"cat": ["A cat."], "dog": ["A dog."], "cat": ["Another cat."]}', "cat"),
    ('{"cat": {"context": ["A cat on a sofa."], "context": ["A cat in a garden."]}}', "context"),
])
def test_a_key_given_twice_is_refused_not_silently_overwritten(tmp_path, content, key):
    with pytest.raises(UserError, match=f"has the key '{key}' twice in one object"):
        build_from(tmp_path, content, ["cat", "dog"])


def test_names_match_across_unicode_composition():
    composed, decomposed = "caf\u00e9 noir", "cafe\u0301 noir"
    assert composed != decomposed and unicodedata.normalize("NFC", decomposed) == composed
    assert normalise_name(decomposed) == normalise_name(composed) == normalise_name("CAF\u00c9_Noir")


def test_a_class_named_in_decomposed_unicode_gets_its_entry(tmp_path):
    records, summary = build_from(tmp_path, {"caf\u00e9 noir": describe("café", 5)}, ["cafe\u0301 noir"])
    assert [r["source"] for r in records] == ["file"] * 5 and summary["missing_classes"] == 0


def test_the_summary_lists_unmatched_keys_and_counts_descriptions_beyond_the_slots(tmp_path):
    names = ["sea lion", "tiger", "missile", "missile"]   # two classes share one entry: its extras count once
    content = {"sea lion": describe("sea lion", 8), "tiger": describe("tiger", 5), "missile": describe("missile", 6),
               "projectile": describe("projectile", 5), "eft": describe("eft", 5)}
    records, summary = build_from(tmp_path, content, names)
    assert summary["unmatched_keys"] == ["projectile", "eft"]
    assert summary["beyond_slots"] == 3 + 0 + 1 and summary["dropped"] == 0 and len(records) == 20
    line = format_summary(summary)
    assert "unused beyond the slots 4, unusable dropped 0" in line
    assert "file keys matching no class (2; check their spelling): 'projectile', 'eft'" in line
    assert "entries shared by several classes, which get the same descriptions (1): 'missile' (classes 2, 3)" in line


def test_every_entry_shared_by_several_classes_is_named(tmp_path):
    names = ["missile", "tiger", "sunglasses", "Sunglasses", "missile"]   # ImageNet: 657/744, 836/837
    content = {"missile": describe("missile", 5), "tiger": describe("tiger", 5), "SUNGLASSES": describe("shades", 5)}
    _, summary = build_from(tmp_path, content, names)
    assert summary["shared_entries"] == ["'missile' (classes 0, 4)", "'SUNGLASSES' (classes 2, 3)"]
    assert "(2): 'missile' (classes 0, 4), 'SUNGLASSES' (classes 2, 3)" in format_summary(summary)
    _, alone = build_from(tmp_path, content, ["missile", "tiger"])
    assert alone["shared_entries"] == [] and "shared by" not in format_summary(alone)


def test_the_summary_names_the_classes_given_offline_text(tmp_path):
    names = [f"class {k}" for k in range(14)]
    records, summary = build_from(tmp_path, {"class 0": describe("class 0", 5)}, names, missing="offline")
    assert summary["offline_classes"] == names[1:]
    assert {r["source"] for r in records if r["class_index"] > 0} == {"offline"}
    assert ("OFFLINE text for classes missing from the file (13): 'class 1', 'class 2', 'class 3', 'class 4', "
            "'class 5', 'class 6', 'class 7', 'class 8', 'class 9', 'class 10' and 3 more") in format_summary(summary)


def test_descriptions_of_a_dimension_left_out_of_the_library_count_as_unused(tmp_path):
    content = {"cat": {"general_appearance": ["A small furry cat.", "A cat with whiskers."],
                       "context": ["A cat on a sofa.", "A cat in a garden.", "A cat by a window."]}}
    records, summary = build_from(tmp_path, content, ["cat"], dimensions=["general_appearance"])
    assert [r["text"] for r in records] == ["A small furry cat."]
    assert summary["beyond_slots"] == 1 + 3
