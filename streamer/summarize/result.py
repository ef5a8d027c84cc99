"""What a summary is made of: chunk notes, gaps, the sectioned summary, and the whole result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Note", "Gap", "SummarySections", "SummaryResult"]


@dataclass(frozen=True)
class Note:
    """The model's notes on one chunk of media."""

    index: int  # chunk number: floor(start_s / chunk_s)
    start_s: float  # seconds from the media start, chunk start
    end_s: float  # seconds from the media start, chunk end (never past the recording's end)
    text: str  # the model's notes (timestamps in the text are the model's own)
    tokens: int  # tokens generated for this note

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "start_s": self.start_s, "end_s": self.end_s, "text": self.text,
                "tokens": self.tokens}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Note:
        return cls(int(data["index"]), float(data["start_s"]), float(data["end_s"]), str(data["text"]),
                   int(data["tokens"]))  # fmt: skip


@dataclass(frozen=True)
class Gap:
    """A stretch of the recording with no decoded media."""

    start_s: float  # seconds from the media start
    end_s: float  # seconds from the media start
    reason: str  # e.g. "no media decoded", "not decoded (damaged or truncated file)"


@dataclass
class SummarySections:
    """The final summary split into the sections the prompt asked for."""

    title: str  # the model's "Title:" line, else the input's name
    overview: str  # the summary's prose (all of the text when the model used no headings)
    key_points: list[str] = field(default_factory=list)  # one line each
    decisions: list[str] | None = None  # one line each; None when the prompt does not ask for them
    action_items: list[str] | None = None  # one line each; None when the prompt does not ask for them
    text: str = ""  # the model's summary exactly as generated


@dataclass
class SummaryResult:
    """A summarized recording: everything the Markdown and JSON renderings show."""

    source: str  # the input path as given (bytes that are not UTF-8 shown as U+FFFD)
    duration_s: float  # seconds of media (the container's, or what was decoded if longer/unknown)
    summary: SummarySections
    notes: list[Note]
    gaps: list[Gap]
    model: dict[str, str]  # name, path, dtype
    tokens: dict[str, int]  # context, evicted, notes, summary, budget (tokens)
    timings: dict[str, float]  # seconds per phase and total
    warnings: list[str]  # media warnings, gaps and budget notes, in order
    summary_levels: int = 0  # 0: summary asked in the session; n: hierarchical levels of condensing
