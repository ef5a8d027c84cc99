"""Feed decoded media into a session as if it were live (CLI ``ask`` and ``summarize``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from streamer.engine.session import Session
from streamer.media.types import SAMPLE_RATE, AudioFrames, VideoFrame

__all__ = ["IngestStats", "ingest"]


@dataclass
class IngestStats:
    frames: int = 0  # video frames pushed
    audio_s: float = 0.0  # seconds of audio pushed
    last_t_s: float = 0.0  # media time of the last item, seconds


def ingest(
    session: Session,
    items: Iterable[VideoFrame | AudioFrames],
    pump: Callable[[], object] | None = None,
    stats: IngestStats | None = None,
) -> IngestStats:
    """Push ``items`` in order; call ``pump`` (e.g. ``engine.run_until_idle``) after each one."""
    stats = stats or IngestStats()
    for item in items:
        if isinstance(item, VideoFrame):
            session.push_frame(item.image, item.t_s)
            stats.frames += 1
        else:
            session.push_audio(item.waveform(), item.t_s)
            stats.audio_s += item.num_valid_samples / SAMPLE_RATE
        stats.last_t_s = max(stats.last_t_s, item.t_s)
        if pump is not None:
            pump()
    return stats
