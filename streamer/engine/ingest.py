"""Feed decoded media into a session as if it were live (CLI ``ask`` and ``summarize``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from streamer.engine.protocol import PushStatus
from streamer.engine.session import Session
from streamer.errors import SessionError
from streamer.media.types import SAMPLE_RATE, AudioFrames, VideoFrame

__all__ = ["IngestStats", "ingest"]


@dataclass
class IngestStats:
    frames: int = 0  # video frames pushed
    audio_s: float = 0.0  # seconds of audio pushed
    last_t_s: float = 0.0  # media time of the last item, seconds
    dropped_frames: int = 0  # frames the session dropped under overload (0 when make_room is given)


def _nearly_full(session: Session, item: VideoFrame | AudioFrames) -> bool:
    """Whether ``item`` might not fit the session's queue now."""
    stats, config = session.stats(), session.config
    if isinstance(item, VideoFrame):
        tokens, nbytes = config.frame_soft_tokens + 12, item.image.nbytes
    else:
        tokens, nbytes = item.num_frames + 2, item.frames.nbytes
    return (
        stats.queued_tokens + tokens > config.max_pending_tokens
        or stats.queued_bytes + nbytes > config.max_pending_bytes
    )


def ingest(
    session: Session,
    items: Iterable[VideoFrame | AudioFrames],
    pump: Callable[[], object] | None = None,
    stats: IngestStats | None = None,
    make_room: Callable[[], object] | None = None,
) -> IngestStats:
    """Push ``items`` in order; call ``pump`` after each one, and ``make_room`` (e.g. wait for the
    engine) before a push that might not fit the session's queue, so a file loses nothing."""
    stats = stats or IngestStats()
    for item in items:
        if make_room is not None and _nearly_full(session, item):
            make_room()
        if isinstance(item, VideoFrame):
            result = session.push_frame(item.image, item.t_s)
            stats.frames += 1
        else:
            result = session.push_audio(item.waveform(), item.t_s)
            stats.audio_s += item.num_valid_samples / SAMPLE_RATE
        if result.status is PushStatus.REFUSED:
            raise SessionError(result.reason or "the session refused the input")
        stats.dropped_frames += result.dropped_frames
        stats.last_t_s = max(stats.last_t_s, item.t_s)
        if pump is not None:
            pump()
    return stats
