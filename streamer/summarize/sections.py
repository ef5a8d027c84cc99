"""The model's summary text → :class:`SummarySections` (title, overview, key points, ...).

The default summary prompt asks for ``Overview:``, ``Key points:``, ``Decisions:`` and
``Action items:`` headings. Headings are recognised with or without Markdown decoration
(``## Decisions``, ``**Decisions:**``) and text may follow the colon on the same line. Text
before any heading, or the whole text when there is none, is the overview. Bullets (``-``,
``*``, ``•``, ``1.``) lose their marker. A section the prompt did not ask for (and the model did not give) is None.
"""

from __future__ import annotations

import re

from streamer.summarize.result import SummarySections

__all__ = ["parse_sections", "clean_text"]

_NAMES = {
    "title": "title",
    "overview": "overview",
    "summary": "overview",
    "key points": "key_points",
    "key takeaways": "key_points",
    "highlights": "key_points",
    "decisions": "decisions",
    "decisions made": "decisions",
    "action items": "action_items",
    "actions": "action_items",
    "next steps": "action_items",
    "to-dos": "action_items",
    "todos": "action_items",
}
_HEADING = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:\*\*|__)?\s*(" + "|".join(re.escape(n) for n in _NAMES) + r")\s*(?:\*\*|__)?\s*:?"
    r"\s*(?:\*\*|__)?\s*(.*)$",
    re.IGNORECASE,
)
_BULLET = re.compile(r"^\s*(?:[-*•+]|\d{1,3}[.)])\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_text(text: str) -> str:
    """``text`` without control characters (tabs and newlines stay) or trailing blanks."""
    return "\n".join(line.rstrip() for line in _CONTROL.sub("", text).strip().splitlines())


def _heading(line: str) -> tuple[str, str] | None:
    match = _HEADING.match(line)
    if match is None:
        return None
    rest = match.group(2).strip()
    # "Summary of the budget" is prose, not a heading: a heading ends or has its colon there.
    if rest and ":" not in line[: match.start(2)]:
        return None
    return _NAMES[match.group(1).lower()], rest


def parse_sections(text: str, title: str, asked: frozenset[str]) -> SummarySections:
    """Split ``text`` into sections; ``title`` when the model gave none; ``asked`` optional sections."""
    lines: dict[str, list[str]] = {"title": [], "overview": [], "key_points": [], "decisions": [],
                                   "action_items": []}  # fmt: skip
    current = "overview"
    for raw in clean_text(text).splitlines():
        head = _heading(raw)
        if head is not None:
            current, rest = head
            if rest:
                lines[current].append(rest)
                if current == "title":  # a one-line heading: prose goes on in the overview
                    current = "overview"
            continue
        if raw.strip():
            lines[current].append(raw.strip())
    items = {k: [_BULLET.sub("", line).strip() for line in v] for k, v in lines.items()}
    return SummarySections(
        title=(items["title"][0] if items["title"] else title),
        overview="\n".join(lines["overview"]),
        key_points=[i for i in items["key_points"] if i],
        decisions=_optional(items["decisions"], "decisions" in asked),
        action_items=_optional(items["action_items"], "action_items" in asked),
        text=text,
    )


def _optional(items: list[str], asked: bool) -> list[str] | None:
    """The section's lines; None when it was neither asked for nor given."""
    kept = [i for i in items if i]
    return kept if (asked or kept) else None
