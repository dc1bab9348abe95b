"""Strict typed loading of one params section: types checked against the dataclass hints, ranges by `check`.

    params = from_dict(TrainParams, {"lr": 0.01})     # unknown key, wrong type or bad range -> one-line UserError

Generic: knows nothing of the sections themselves (pipeline/params.py declares them).
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Literal

from pipeline.core.errors import UserError

_SCALARS = {
    bool: (lambda v: isinstance(v, bool), "true or false"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    float: (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    str: (lambda v: isinstance(v, str), "a string"),
}
"""Scalar type hint -> (accepts the YAML value, what the error says is expected). YAML true is not an integer."""


def check(params, key: str, ok: bool, allowed: str) -> None:
    """Raise a one-line UserError when a value is out of range."""
    if not ok:
        raise UserError(f"params: {params.SECTION}.{key} = {getattr(params, key)!r} is out of range; "
                        f"allowed: {allowed}.")


def from_dict(cls: type, values: dict):
    """Build a params dataclass from a dict, checking keys, types and ranges."""
    section = cls.SECTION
    if not isinstance(values, dict):
        raise UserError(f"params: section {section!r} must be a mapping of keys, got {type(values).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in values:
        if key not in fields:
            raise UserError(f"params: unknown key {section}.{key}; allowed keys: {', '.join(fields)}.")
    kwargs = {key: _coerce(section, key, hints[key], value) for key, value in values.items()}
    params = cls(**kwargs)
    if hasattr(params, "validate"):
        params.validate()
    return params


def _coerce(section: str, key: str, hint, value):
    """Check (and lightly convert) one value against its type hint."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    where = f"params: {section}.{key} = {value!r}"
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _coerce(section, key, inner[0], value)
        for option in inner:  # e.g. `float | Literal["auto"]`: the first type that accepts the value wins
            try:
                return _coerce(section, key, option, value)
            except UserError:
                pass
        raise UserError(f"{where} has the wrong type; expected {' or '.join(map(_expected, inner))}.")
    if origin is Literal:
        if value not in args:
            raise UserError(f"{where} is not allowed; choose one of: {', '.join(map(str, args))}.")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise UserError(f"{where} has the wrong type; expected a list of strings.")
        return tuple(value)
    if hint in _SCALARS:
        accepts, expected = _SCALARS[hint]
        if not accepts(value):
            raise UserError(f"{where} has the wrong type; expected {expected}.")
        if hint is float and not math.isfinite(float(value)):
            raise UserError(f"{where} is not a finite number.")
        return float(value) if hint is float else value
    raise TypeError(f"unsupported params type {hint!r} for {section}.{key}")


def _expected(hint) -> str:
    """What a type hint accepts, in words: 'a number', 'auto'."""
    if typing.get_origin(hint) is Literal:
        return " or ".join(map(str, typing.get_args(hint)))
    return _SCALARS[hint][1] if hint in _SCALARS else str(hint)
