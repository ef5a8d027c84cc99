"""Validated argparse types shared by every command and benchmark.

Every numeric, text and device option goes through one of these, so a bad value (``-1``,
``1e-45``, ``nan``, ``abc``, ``2**64``, invalid UTF-8) is a usage error on one line with exit
code 2, before any file is opened or any model is loaded:

    parser.add_argument("--threads", type=THREADS, default=None)
    parser.add_argument("--temperature", type=number(float, 1e-2, 100.0, also=(0.0,)), default=0.0)

The ranges are the CLI's; the library validates its own arguments again (a caller of the API
never passes through argparse).
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Iterable

from streamer.engine.protocol import MAX_SEED
from streamer.text import invalid_utf8

__all__ = [
    "Number",
    "number",
    "number_list",
    "text",
    "question",
    "device",
    "THREADS",
    "SEED",
    "TOKENS",
    "CONTEXT_TOKENS",
    "FPS",
    "MINUTES",
]

_DEVICE = re.compile(r"(cpu|mps|cuda(:\d{1,3})?)")


class Number:
    """An argparse ``type``: an int or a finite float within ``[lo, hi]`` (or one of ``also``)."""

    def __init__(
        self,
        kind: type[int] | type[float],
        lo: float | None = None,
        hi: float | None = None,
        *,
        lo_open: bool = False,
        also: Iterable[float] = (),
    ) -> None:
        self.kind, self.lo, self.hi, self.lo_open, self.also = kind, lo, hi, lo_open, tuple(also)
        self.__name__ = "integer" if kind is int else "number"  # argparse names the type in messages

    def describe(self) -> str:
        """``an integer in [1, 1024]``, ``a number in (0, 30]``, ``0 or a number in [0.01, 100]``."""
        what = "an integer" if self.kind is int else "a number"
        left = "(" if self.lo_open else "["
        if self.lo is None and self.hi is None:
            span = what
        elif self.hi is None:
            span = f"{what} {'>' if self.lo_open else '>='} {self.lo:g}"
        elif self.lo is None:
            span = f"{what} <= {self.hi:g}"
        else:
            span = f"{what} in {left}{_fmt(self.lo)}, {_fmt(self.hi)}]"
        extra = " or ".join(_fmt(v) for v in self.also)
        return f"{extra} or {span}" if extra else span

    def __call__(self, raw: str) -> int | float:
        bad = argparse.ArgumentTypeError(f"must be {self.describe()}, got {_shown(raw)}")
        try:
            value: int | float = int(raw, 10) if self.kind is int else float(raw)
        except (ValueError, TypeError, OverflowError):
            raise bad from None
        if isinstance(value, float) and not math.isfinite(value):
            raise bad
        if value in self.also:
            return value
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            raise bad
        if self.hi is not None and value > self.hi:
            raise bad
        return value


def number(
    kind: type[int] | type[float],
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    also: Iterable[float] = (),
) -> Number:
    """A :class:`Number` type (see there)."""
    return Number(kind, lo, hi, lo_open=lo_open, also=also)


def number_list(item: Number) -> Callable[[str], list[float]]:
    """Comma-separated values of ``item``, at least one: ``--ttft-at 1,10,60``."""

    def parse(raw: str) -> list[float]:
        parts = [p.strip() for p in raw.split(",")]
        if not raw.strip() or not all(parts):
            raise argparse.ArgumentTypeError(f"must be comma-separated values, got {_shown(raw)}")
        try:
            return [float(item(p)) for p in parts]
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"each value {exc}") from None

    parse.__name__ = "list"
    return parse


def text(raw: str) -> str:
    """An argparse ``type`` for user text (questions, prompts, choices): valid Unicode only.

    Bytes in ``argv`` that are not UTF-8 reach Python as lone surrogates; they would reach the
    tokenizer (a TypeError there) or be written into files that then cannot be encoded.
    """
    where = invalid_utf8(raw)
    if where is not None:
        raise argparse.ArgumentTypeError(f"is not valid UTF-8 text ({where})")
    return raw


def question(raw: str) -> str:
    """An argparse ``type`` for a question or prompt: :func:`text` that is not blank (refused before
    the model loads, with the usage exit code)."""
    value = text(raw)
    if not value.strip():
        raise argparse.ArgumentTypeError("is empty")
    return value


def device(raw: str) -> str:
    """``cpu``, ``cuda``, ``cuda:N`` or ``mps``; whether it exists is checked when the model loads."""
    if invalid_utf8(raw) is not None or not _DEVICE.fullmatch(raw):
        raise argparse.ArgumentTypeError(f"must be cpu, cuda, cuda:N or mps, got {_shown(raw)}")
    return raw


def _fmt(value: float) -> str:
    if abs(value) >= 1e16:
        return f"2**{round(math.log2(value + 1))} - 1"  # 2**63 - 1, not 9.22337e+18
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _shown(raw: str) -> str:
    """The value as typed, short and printable (no newline, no surrogate)."""
    shown = raw.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
    shown = shown.replace("\n", "\\n").replace("\r", "\\r")
    return repr(shown if len(shown) <= 40 else shown[:37] + "...")


# Shared option types (one definition, every command).
THREADS = number(int, 1, 1024)  # torch CPU threads
SEED = number(int, 0, MAX_SEED)  # the engine's bound: a signed 64-bit torch seed
TOKENS = number(int, 1, 32_768)  # an answer's token cap
CONTEXT_TOKENS = number(int, 1, 1 << 22)  # a session's KV budget (the engine checks its own minimum)
FPS = number(float, 0.0, 30.0, lo_open=True)  # video frames sampled per second of media
MINUTES = number(float, 0.0, 24 * 60.0, lo_open=True)  # minutes of media
