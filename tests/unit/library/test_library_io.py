"""library.jsonl read back for embedding: complete tables pass, missing classes or dimensions are refused."""
import json

import pytest

from pipeline.core.errors import UserError
from pipeline.library.io import read_library

NAMES = ["red circle", "blue square"]
DIMS = ["general_appearance", "context"]


def _records(source="offline", drop=None):
    records = [{"class_index": c, "class_name": name, "slot": s, "dimension": dim, "text": f"a {name} {dim}",
                "source": source} for c, name in enumerate(NAMES) for s, dim in enumerate(DIMS)]
    return [r for r in records if (r["class_index"], r["slot"]) != drop]


def _write(tmp_path, records):
    path = tmp_path / "library.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_complete_library(tmp_path):
    table = read_library(_write(tmp_path, _records()), NAMES)
    assert table.mask.all() and table.dimensions == DIMS and len(table.texts) == 4


def test_missing_dimension_is_refused(tmp_path):
    with pytest.raises(UserError, match="class 'blue square' lacks the context dimension"):
        read_library(_write(tmp_path, _records(drop=(1, 1))), NAMES)


def test_file_imported_class_may_leave_slots_empty(tmp_path):
    table = read_library(_write(tmp_path, _records(source="file", drop=(1, 1))), NAMES)
    assert table.mask.tolist() == [[True, True], [True, False]]


def test_missing_class_is_refused(tmp_path):
    records = [r for r in _records() if r["class_index"] == 0]
    with pytest.raises(UserError, match="no description for 1 class\\(es\\) \\(blue square\\)"):
        read_library(_write(tmp_path, records), NAMES)


def test_library_for_another_class_list_is_refused(tmp_path):
    with pytest.raises(UserError, match="does not match classes.json"):
        read_library(_write(tmp_path, _records()), ["red circle", "green star"])


def test_corrupt_line_names_the_line(tmp_path):
    path = _write(tmp_path, _records())
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(UserError, match="line 5: not valid JSON"):
        read_library(path, NAMES)
