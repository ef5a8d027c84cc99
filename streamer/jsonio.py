"""Strict JSON in and out: no ``NaN`` or ``Infinity`` (RFC 8259 has neither).

Python's ``json`` writes ``NaN`` for a float NaN and reads ``NaN``/``Infinity`` back, so a
timing that never happened (``ttft_s`` of an answer without tokens) or a hand-edited file slips
through as JSON that other tools reject. Every JSON streamer writes or reads goes through here:

* :func:`dumps` writes a non-finite float as ``null`` and never emits NaN/Infinity.
* :func:`loads` refuses ``NaN``/``Infinity``/``-Infinity`` with a ValueError
  (``json.JSONDecodeError`` is one too), and integers longer than Python converts by default
  (4,300 digits) with a message of its own instead of Python's advice to raise that limit.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["dumps", "loads"]


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` with non-finite floats as ``null`` (keyword arguments as ``json.dumps``)."""
    return json.dumps(_finite(value), allow_nan=False, **kwargs)


def _reject(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_MAX_INT_DIGITS = 4300  # Python's default int/str conversion limit (sys.get_int_max_str_digits)


def _integer(text: str) -> int:
    digits = len(text) - text.startswith("-")
    if digits > _MAX_INT_DIGITS:
        raise ValueError(f"an integer of {digits} digits is too long (at most {_MAX_INT_DIGITS})")
    return int(text)


def loads(text: str | bytes) -> Any:
    """``json.loads`` that refuses ``NaN``, ``Infinity``, ``-Infinity`` and integers past 4,300 digits."""
    return json.loads(text, parse_constant=_reject, parse_int=_integer)
