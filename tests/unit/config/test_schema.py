"""Strict typed loading of one section (pipeline/config/schema.py), on a section declared here: every hint it knows."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import pytest

from pipeline.config.schema import check, from_dict
from pipeline.core.errors import UserError


@dataclass(frozen=True)
class Example:
    SECTION = "example"
    mode: Literal["fast", "exact"] = "fast"
    note: Optional[str] = None
    names: tuple[str, ...] = ("a",)
    count: int = 1
    ratio: float = 0.5
    flag: bool = False

    def validate(self) -> None:
        check(self, "count", self.count >= 1, "an integer >= 1")


@dataclass(frozen=True)
class Unsupported:
    SECTION = "unsupported"
    table: dict = None


def test_values_are_checked_and_converted():
    params = from_dict(Example, {"mode": "exact", "note": None, "names": ["x", "y"], "count": 3, "ratio": 2,
                                 "flag": True})
    assert params == Example("exact", None, ("x", "y"), 3, 2.0, True)
    assert type(params.ratio) is float and type(params.names) is tuple
    assert from_dict(Example, {"note": "hello"}).note == "hello"
    assert from_dict(Example, {}) == Example()


@pytest.mark.parametrize("values, message", [
    ({"mode": "slow"}, "example.mode = 'slow' is not allowed; choose one of: fast, exact."),
    ({"names": "x"}, "example.names = 'x' has the wrong type; expected a list of strings."),
    ({"names": ["x", 1]}, "example.names = ['x', 1] has the wrong type; expected a list of strings."),
    ({"count": True}, "example.count = True has the wrong type; expected an integer."),
    ({"ratio": "half"}, "example.ratio = 'half' has the wrong type; expected a number."),
    ({"ratio": float("nan")}, "example.ratio = nan is not a finite number."),
    ({"ratio": float("inf")}, "example.ratio = inf is not a finite number."),
    ({"flag": 1}, "example.flag = 1 has the wrong type; expected true or false."),
    ({"note": 3}, "example.note = 3 has the wrong type; expected a string."),
    ({"count": 0}, "example.count = 0 is out of range; allowed: an integer >= 1."),
    ({"colour": "red"}, "unknown key example.colour; allowed keys: mode, note, names, count, ratio, flag."),
])
def test_each_problem_is_one_line_naming_the_key(values, message):
    with pytest.raises(UserError) as err:
        from_dict(Example, values)
    assert str(err.value) == f"params: {message}"


def test_a_section_that_is_not_a_mapping_and_an_unknown_hint():
    with pytest.raises(UserError, match="section 'example' must be a mapping of keys, got list"):
        from_dict(Example, ["mode"])
    with pytest.raises(TypeError, match="unsupported params type"):   # a programming error, not the user's
        from_dict(Unsupported, {"table": {}})
