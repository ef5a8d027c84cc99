"""A :class:`SummaryResult` as Markdown or JSON text.

Markdown: title, source line, Overview, Key points, Decisions and Action items (when asked for
or given), Gaps (when any part was not decoded, with the media warnings), then the notes of each
chunk under its ``mm:ss–mm:ss`` heading (``h:mm:ss`` for recordings of an hour or more). JSON
holds the same content plus metadata::

    {"source", "duration_s", "summary": {"title", "overview", "key_points", "decisions",
     "action_items", "text"}, "notes": [{"start_s", "end_s", "text"}], "gaps": [{"start_s",
     "end_s", "reason"}], "summary_levels", "model", "tokens", "timings", "warnings"}
"""

from __future__ import annotations

import os
import re
from typing import Any

from streamer import jsonio
from streamer.summarize.clock import format_clock, format_span
from streamer.summarize.gaps import describe_gap
from streamer.summarize.result import SummaryResult
from streamer.summarize.sections import clean_text

__all__ = ["render", "render_markdown", "render_json", "to_json_dict", "FORMATS"]

FORMATS = ("md", "json")
_BLOCK_START = re.compile(r"^(\s*)(#|=+\s*$|-{3,}\s*$|>)")


def _md(text: str) -> str:
    """Model text made safe to embed: no control characters, no accidental headings or rules."""
    return "\n".join(_BLOCK_START.sub(r"\1\\\2", line) for line in clean_text(text).splitlines())


def _bullets(items: list[str]) -> list[str]:
    return [f"- {_md(i)}" for i in items] if items else ["_None listed._"]


def render_markdown(result: SummaryResult) -> str:
    s, long = result.summary, result.duration_s >= 3600
    out = [f"# {_md(s.title).replace(chr(10), ' ')}", ""]
    model = result.model.get("name", "?")
    out += [f"**Source:** {os.path.basename(result.source)} · **Duration:** "
            f"{format_clock(result.duration_s, long)} · **Model:** {model}", ""]  # fmt: skip
    out += ["## Overview", "", _md(s.overview) or "_The model gave no overview._", ""]
    out += ["## Key points", "", *_bullets(s.key_points), ""]
    if s.decisions is not None:
        out += ["## Decisions", "", *_bullets(s.decisions), ""]
    if s.action_items is not None:
        out += ["## Action items", "", *_bullets(s.action_items), ""]
    if result.gaps:
        out += [
            "## Gaps",
            "",
            "Parts of the recording could not be decoded; the summary covers the rest:",
            "",
        ]
        out += [f"- {format_span(g.start_s, g.end_s, long)}: {g.reason}" for g in result.gaps]
        out.append("")
    shown = {describe_gap(g) for g in result.gaps}
    media_warnings = [w for w in result.warnings if w not in shown]
    if media_warnings:
        out += ["## Warnings", "", *[f"- {_md(w)}" for w in media_warnings], ""]
    out += ["## Notes", ""]
    for note in result.notes:
        out += [f"### {format_span(note.start_s, note.end_s, long)}", ""]
        holes = [g for g in result.gaps if g.start_s < note.end_s and g.end_s > note.start_s]
        if holes:
            spans = ", ".join(format_span(g.start_s, g.end_s, long) for g in holes)
            out += [f"_Nothing decoded {spans}._", ""]
        out += [_md(note.text) or "_No notes._", ""]
    if not result.notes:
        out += ["_No media could be decoded, so there are no notes._", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def to_json_dict(result: SummaryResult) -> dict[str, Any]:
    s = result.summary
    return {
        "source": result.source,
        "duration_s": round(result.duration_s, 3),
        "summary": {
            "title": s.title,
            "overview": s.overview,
            "key_points": s.key_points,
            "decisions": s.decisions,
            "action_items": s.action_items,
            "text": s.text,
        },  # fmt: skip
        "notes": [
            {"start_s": round(n.start_s, 3), "end_s": round(n.end_s, 3), "text": n.text} for n in result.notes
        ],
        "gaps": [
            {"start_s": round(g.start_s, 3), "end_s": round(g.end_s, 3), "reason": g.reason}
            for g in result.gaps
        ],
        "summary_levels": result.summary_levels,
        "model": result.model,
        "tokens": result.tokens,
        "timings": {k: round(v, 3) for k, v in result.timings.items()},
        "warnings": result.warnings,
    }


def render_json(result: SummaryResult) -> str:
    return jsonio.dumps(to_json_dict(result), indent=2, ensure_ascii=False) + "\n"


def render(result: SummaryResult, fmt: str) -> str:
    """``fmt`` is ``md`` or ``json``."""
    if fmt == "json":
        return render_json(result)
    return render_markdown(result)
