"""How a recording is summarized: chunking, token caps, context budget, prompts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from streamer.errors import InputError
from streamer.summarize.prompts import Prompts

__all__ = ["SummarizeOptions"]


@dataclass(frozen=True)
class SummarizeOptions:
    """Everything that changes the summary's tokens (a resume must use the same values)."""

    fps: float = 1.0  # video frames sampled per second of media
    chunk_s: float = 60.0  # seconds of media per chunk (notes are asked at each chunk's end)
    note_tokens: int = 96  # tokens, cap of each chunk's notes
    summary_tokens: int = 256  # tokens, cap of the final summary
    merge_tokens: int = 192  # tokens, cap of one condensed group of notes (hierarchical summary)
    max_context_tokens: int | None = None  # tokens, the session's KV budget (None: engine default)
    gap_s: float = 2.0  # seconds without any decoded media that count as a gap
    prompts: Prompts = field(default_factory=Prompts)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.fps) and 0 < self.fps <= 30):
            raise InputError(f"--fps must be in (0, 30], got {self.fps}")
        if not (math.isfinite(self.chunk_s) and 1.0 <= self.chunk_s <= 24 * 3600):
            raise InputError(f"a chunk must last from 1 s to 24 h, got {self.chunk_s:g} s")
        for name in ("note_tokens", "summary_tokens", "merge_tokens"):
            value = getattr(self, name)
            if not 1 <= value <= 8192:
                raise InputError(f"{name.replace('_', '-')} must be in [1, 8192], got {value}")
        if not (math.isfinite(self.gap_s) and self.gap_s > 0):
            raise InputError(f"gap_s must be > 0, got {self.gap_s}")

    @classmethod
    def from_minutes(cls, chunk_minutes: float, **kwargs: Any) -> SummarizeOptions:
        """Options with the chunk length given in (possibly fractional) minutes, kept to the ms."""
        if not math.isfinite(chunk_minutes) or chunk_minutes <= 0:
            raise InputError(f"--chunk-minutes must be > 0, got {chunk_minutes}")
        return cls(chunk_s=round(chunk_minutes * 60.0, 3), **kwargs)

    def fingerprint(self) -> dict[str, Any]:
        """The values a resumed run must share with the interrupted one (JSON-ready)."""
        return {
            "fps": self.fps,
            "chunk_s": self.chunk_s,
            "note_tokens": self.note_tokens,
            "summary_tokens": self.summary_tokens,
            "merge_tokens": self.merge_tokens,
            "max_context_tokens": self.max_context_tokens,
            "gap_s": self.gap_s,
            "prompts": self.prompts.digest(),
        }
