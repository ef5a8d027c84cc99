"""Media times as text: ``mm:ss`` below an hour, ``h:mm:ss`` from an hour on."""

from __future__ import annotations

__all__ = ["format_clock", "format_span"]


def format_clock(seconds: float, long: bool = False) -> str:
    """``mm:ss`` (or ``h:mm:ss`` when ``long`` or ``seconds`` >= 1 h), rounded down to the second."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if long or hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes:02d}:{secs:02d}"


def format_span(start_s: float, end_s: float, long: bool = False) -> str:
    """``start–end`` with one format for both ends."""
    return f"{format_clock(start_s, long)}–{format_clock(end_s, long)}"
