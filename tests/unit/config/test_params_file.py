"""The params file itself: YAML errors located by line and column, an empty file refused, presets still applicable.

    .venv/bin/python -m pytest tests/unit/config/test_params_file.py -q
"""
import pytest

from pipeline.config import presets
from pipeline.config.data_params import DatasetParams
from pipeline.config.params import load_params
from pipeline.core.errors import UserError


@pytest.mark.parametrize("text, where", [
    ("dataset:\n  name: folder\n  root: data: raw\n", "line 3, column 13: not valid YAML (mapping values"),
    ("dataset:\n  root: [a, b\ntrain:\n  lr: 1\n", "line 3, column 6: not valid YAML (expected ',' or ']'"),
    ("dataset:\n\tname: folder\n", "line 2, column 1: not valid YAML (found character '\\t'"),
])
def test_yaml_errors_say_line_and_column(tmp_path, text, where):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as error:
        load_params(path, DatasetParams)
    assert f"params: {path}, {where}" in str(error.value) and str(error.value).endswith("; fix the syntax there.")


@pytest.mark.parametrize("text", ["", "\n", "# every key was deleted\n", "{}\n"])
def test_an_empty_params_file_is_refused_not_run_on_code_defaults(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match="is empty; write every key with `mdpr preset demo"):
        load_params(path, DatasetParams)


def test_the_preset_the_empty_file_error_names_fills_it(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("")
    merged, changed = presets.apply_preset("demo", path)
    path.write_text(presets.render(merged))
    assert load_params(path, DatasetParams) == DatasetParams() and changed
