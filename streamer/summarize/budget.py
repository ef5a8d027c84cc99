"""Context sizing for summarize: how many tokens a chunk of media costs, the session's default
budget, and whether the notes still fit beside the media when the summary is asked.

Plain arithmetic on the engine's public settings; no model calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamer.engine.core import default_context_tokens
from streamer.engine.session import SessionConfig
from streamer.media.types import MediaInfo

if TYPE_CHECKING:
    from streamer.engine.engine import Engine

__all__ = ["tokens_per_second", "default_budget", "notes_fit", "NOTES_RESERVE", "MARGIN"]

NOTES_RESERVE = 4096  # tokens of notes the default budget keeps room for (~30 chunks' notes)
MARGIN = 64  # tokens kept free for turn markers and rounding
_FRAME_EXTRA = 6  # tokens around a frame's soft tokens: <boi>, <eoi> and its "mm:ss " stamp
_AUDIO_PER_S = 27  # tokens per second of audio: 25 soft tokens + <boa><eoa> per 1 s segment


def tokens_per_second(info: MediaInfo, fps: float, frame_soft_tokens: int | None = None) -> float:
    """Tokens one second of this media costs in a session (frames at ``fps`` plus audio)."""
    frame = (frame_soft_tokens or SessionConfig().frame_soft_tokens) + _FRAME_EXTRA
    return (fps * frame if info.video else 0.0) + (_AUDIO_PER_S if info.audio else 0.0)


def _protected(engine: Engine) -> int:
    return engine.loaded.config.text.effective_sliding_window + 16


def default_budget(engine: Engine, info: MediaInfo, fps: float, chunk_s: float) -> int:
    """Enough for one whole chunk of media plus NOTES_RESERVE tokens of notes after an eviction,
    and at most the engine's default (the model's positions and the KV memory target).

    Attention cost grows with the context, so a budget sized to the job keeps prefill fast.
    """
    chunk = tokens_per_second(info, fps) * chunk_s
    keep = SessionConfig().evict_to_fraction
    wanted = (
        int((chunk + NOTES_RESERVE) / keep)
        + _protected(engine)
        + engine.scheduler_config.prefill_chunk_tokens
    )
    wanted = -(-wanted // 256) * 256
    return min(wanted, default_context_tokens(engine.loaded, engine.config.kv_bytes_per_session))


def notes_fit(
    engine: Engine, budget: int, text_tokens: int, question_tokens: int, answer_tokens: int
) -> bool:
    """Whether ``text_tokens`` of notes (plus the question and the answer) are safe from eviction.

    Eviction drops media before text and never the most recent ``window + 16`` tokens; it frees
    down to ``evict_to_fraction`` of the budget, leaving room for a prefill chunk. Text survives
    while it fits in that share next to the protected tail.
    """
    keep = int(budget * SessionConfig().evict_to_fraction)
    target = min(keep, budget - engine.scheduler_config.prefill_chunk_tokens)
    return text_tokens + question_tokens + answer_tokens <= target - _protected(engine) - MARGIN
