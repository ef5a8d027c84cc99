"""Gaps: stretches of the recording where nothing was decoded (holes, damage, truncation).

:class:`GapTracker` sees every decoded item in time order. An audio block covers
``[t_s, end_s)``, a sampled frame ``[t_s, t_s + 1/fps)``; when the next item starts more than
``gap_s`` after everything seen so far ends, that stretch is a gap. :meth:`GapTracker.finish`
adds a gap at the start and at the end of the recording when decoding began late or stopped
early. Plain data: no decoding, no model.
"""

from __future__ import annotations

from streamer.media.types import AudioFrames, VideoFrame
from streamer.summarize.clock import format_span
from streamer.summarize.result import Gap

__all__ = ["GapTracker", "describe_gap"]


def describe_gap(gap: Gap) -> str:
    """One line for logs and the warnings list, e.g. ``gap 01:10–01:25: no media decoded``."""
    return f"gap {format_span(gap.start_s, gap.end_s, gap.end_s >= 3600)}: {gap.reason}"


class GapTracker:
    def __init__(self, fps: float, gap_s: float = 2.0):
        self.frame_s = 1.0 / fps  # seconds one sampled frame stands for
        self.gap_s = gap_s
        self.covered_until = 0.0  # seconds: media time up to which items were seen
        self.gaps: list[Gap] = []  # found so far, in time order

    def observe(self, item: VideoFrame | AudioFrames) -> Gap | None:
        """Account for ``item``; the gap it closes, if any."""
        if isinstance(item, AudioFrames):
            end = item.end_s
        else:
            end = item.t_s + self.frame_s
        gap = None
        if item.t_s - self.covered_until > self.gap_s:
            gap = Gap(self.covered_until, item.t_s, "no media decoded")
            self.gaps.append(gap)
        self.covered_until = max(self.covered_until, end)
        return gap

    def finish(self, duration_s: float | None) -> Gap | None:
        """Close the recording (``duration_s`` from the container, None if unknown); a gap at the end."""
        if duration_s is None or duration_s - self.covered_until <= self.gap_s:
            return None
        if self.covered_until == 0.0 and not self.gaps:
            gap = Gap(0.0, duration_s, "nothing could be decoded")
        else:
            gap = Gap(self.covered_until, duration_s, "not decoded (damaged or truncated file?)")
        self.gaps.append(gap)
        return gap

    def within(self, start_s: float, end_s: float) -> list[Gap]:
        """Gaps found so far that overlap ``[start_s, end_s)``."""
        return [g for g in self.gaps if g.start_s < end_s and g.end_s > start_s]
