"""The `file` backend's pieces: the descriptor JSON indexed by normalised name, slot groups, records and counts."""
import json

import pytest

from pipeline.config.library_params import LibraryParams, LLMParams
from pipeline.core.errors import UserError
from pipeline.library.descriptor_file import file_records, read_descriptor_file, slot_groups
from pipeline.library.records import RecordMaker


def write(tmp_path, data) -> str:
    path = tmp_path / "descriptors.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_the_file_is_indexed_by_normalised_class_name(tmp_path):
    index = read_descriptor_file(write(tmp_path, {" Sea_Lion ": ["wet"], "TIGER  cub": {"context": ["grass"]}}))
    assert index == {"sea lion": ["wet"], "tiger cub": {"context": ["grass"]}}
    with pytest.raises(UserError, match="two entries for one class \\('sea lion' and 'SEA_LION'\\)"):
        read_descriptor_file(write(tmp_path, {"sea lion": ["a"], "SEA_LION": ["b"]}))


def test_slot_groups_follow_the_configured_dimensions():
    lib = LibraryParams(dimensions=("context", "general_appearance", "differential"), per_dimension=2)
    entry = {"general_appearance": "one text", "context": ["c1", "c2", "c3"]}
    assert slot_groups(entry, lib, "here") == [(0, 2, ["c1", "c2", "c3"]), (2, 2, ["one text"]), (4, 2, [])]
    assert slot_groups(["a", "b"], lib, "here") == [(0, 6, ["a", "b"])]        # a plain list fills all V slots
    with pytest.raises(UserError, match="here has unknown dimension 'colour'"):
        slot_groups({"colour": ["red"]}, lib, "here")
    with pytest.raises(UserError, match="here.context must be a list of strings"):
        slot_groups({"context": [1]}, lib, "here")


def test_records_fill_slots_in_order_and_count_what_was_dropped(tmp_path):
    lib = LibraryParams(dimensions=("general_appearance", "context"), per_dimension=2, missing="offline",
                        file=write(tmp_path, {"cat": {"context": ["", "A cat on a sofa.", "A cat in a box.", "x"]},
                                              "dog": ["- A dog.", "I'm sorry, I cannot help.", "A dog barks."]}))
    maker = RecordMaker(LLMParams(backend="file"), lib, [None, None, None])
    records, info = file_records(["cat", "Dog", "owl"], maker)
    assert [(r["class_index"], r["slot"], r["dimension"], r["text"], r["source"]) for r in records[:4]] == [
        (0, 2, "context", "A cat on a sofa.", "file"), (0, 3, "context", "A cat in a box.", "file"),
        (1, 0, "general_appearance", "A dog.", "file"), (1, 1, "general_appearance", "A dog barks.", "file")]
    assert [(r["class_index"], r["slot"], r["source"]) for r in records[4:]] == [(2, s, "offline") for s in range(4)]
    assert info == {"missing_classes": 1, "truncated": 0, "dropped": 2,      # the empty text and the refusal
                    "beyond_slots": 1, "offline_classes": ["owl"], "unmatched_keys": [],
                    "shared_entries": []}   # 'x': cat's slots are full
