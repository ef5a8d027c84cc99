"""Type and range checks for ``config.json`` fields, from the config dataclasses' annotations.

:func:`check_fields` runs before a config dataclass is built: every field present must have its
annotated JSON type (``int`` means an integer and not ``true``; ``float`` a finite number; ``X | None``
also ``null``; ``list[X]``/``dict[K, V]`` check their items) and lie in its declared range. The
first bad field is one :class:`~streamer.errors.ConfigError` naming it::

    config.json: text_config.hidden_size must be an integer >= 1, got "sixty-four"
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Union

from streamer import jsonio
from streamer.errors import ConfigError

__all__ = ["Range", "check_fields", "check_value"]

_INT_MAX = 2**31 - 1  # no size, count or id in a checkpoint is larger


@dataclass(frozen=True)
class Range:
    """Bounds of a numeric field: ``lo <= v <= hi`` (``lo < v`` when ``lo_open``)."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False

    def holds(self, value: float) -> bool:
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return self.hi is None or value <= self.hi

    def describe(self) -> str:
        parts = []
        if self.lo is not None:
            parts.append(f"{'>' if self.lo_open else '>='} {self.lo:g}")
        if self.hi is not None:
            parts.append(f"<= {self.hi:g}")
        return " and ".join(parts)


def _matches(value: Any, kind: Any) -> bool:
    """``value`` (parsed JSON) has the annotated type ``kind``."""
    if kind is Any:
        return True
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= _INT_MAX
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind is str:
        return isinstance(value, str)
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            return False
        keys_ok = all(_key_ok(k, args[0]) for k in value)
        return keys_ok and all(_matches(v, args[1]) for v in value.values())
    raise TypeError(f"no JSON check for {kind!r}")  # a new annotation: teach this function


def _key_ok(key: Any, kind: Any) -> bool:
    if kind is int:  # JSON object keys are strings: "5" is layer 5
        try:
            return int(key) >= 0
        except (TypeError, ValueError):
            return False
    return _matches(key, kind)


def _describe(kind: Any) -> str:
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string", Any: "any value"}
    if kind in names:
        return names[kind]
    if kind is type(None):
        return "null"
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is list:
        return f"a list of {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
    if origin is dict:
        return "an object"
    return str(kind)


def _shown(value: Any) -> str:
    text = jsonio.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_value(where: str, value: Any, kind: Any, bounds: Range | None = None) -> None:
    """ConfigError unless ``value`` has type ``kind`` and, when numeric, lies in ``bounds``."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _INT_MAX:
        raise ConfigError(f"config.json: {where} must be at most {_INT_MAX}, got {value}")
    if not _matches(value, kind):
        raise ConfigError(f"config.json: {where} must be {_describe(kind)}, got {_shown(value)}")
    numbers = value if isinstance(value, list) else [value]
    for v in numbers:
        if (
            bounds is not None
            and isinstance(v, (int, float))
            and not isinstance(v, bool)
            and not bounds.holds(v)
        ):
            raise ConfigError(f"config.json: {where} must be {bounds.describe()}, got {_shown(value)}")


def check_fields(section: str, data: dict[str, Any], cls: type, ranges: dict[str, Range]) -> None:
    """Check each field of ``data`` that ``cls`` declares against its annotation and ``ranges``."""
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        if name in hints:
            check_value(f"{section}.{name}", value, hints[name], ranges.get(name))
