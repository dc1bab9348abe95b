"""The LLM answer cache: a damaged database is one line that says to move it aside, never a sqlite traceback.

    .venv/bin/python -m pytest tests/unit/library/test_answer_cache.py -q
"""
import numpy as np
import pytest

from pipeline.core.errors import UserError
from pipeline.library.answer_cache import open_cache


@pytest.fixture
def filled(tmp_path):
    cache = open_cache(str(tmp_path / "llm"))
    for k in range(400):
        cache.set(f"{k:064x}", {"text": f"answer {k} " * 20})
    cache.close()
    return tmp_path / "llm"


@pytest.mark.parametrize("damage", [
    lambda data: data[:100],                                          # cut inside the header page
    lambda data: data[:len(data) // 2],                               # cut between pages
    lambda data: data[:-4096],                                        # last page lost
    lambda data: np.random.default_rng(0).bytes(len(data)),           # garbage
    lambda data: data[:len(data) // 2] + np.random.default_rng(0).bytes(4096) + data[len(data) // 2 + 4096:],
], ids=["header", "half", "last-page", "garbage", "scribbled-page"])   # the last one opens, and fails on reads
def test_a_damaged_cache_is_one_line_naming_the_fix(filled, damage):
    database = filled / "cache.db"
    database.write_bytes(damage(database.read_bytes()))
    with pytest.raises(UserError) as error:
        open_cache(str(filled) + "/")
    message = str(error.value)
    assert "is damaged (sqlite:" in message and "answers it held will be asked again" in message
    assert f"`mv {filled} {filled}.damaged`" in message


def test_an_intact_cache_opens_with_its_answers(filled):
    cache = open_cache(str(filled))
    assert len(cache) == 400 and cache.get(f"{7:064x}") == {"text": "answer 7 " * 20}
