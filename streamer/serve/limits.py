"""What every live endpoint (WebSocket, gRPC, later OpenAI Realtime) accepts: one limits dataclass.

The values are checked on construction (InputError names the field) so a bad ``streamer serve``
flag is a one-line user error. :meth:`ServeLimits.media_limits` turns the media part into the
:class:`~streamer.media.types.MediaLimits` the live decoders enforce; :meth:`ServeLimits.public`
is what a client reads in the ``ready`` message.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from streamer.errors import InputError
from streamer.media.types import MediaLimits

__all__ = ["ServeLimits"]


@dataclass(frozen=True)
class ServeLimits:
    """Per-server and per-connection limits shared by all endpoints.

    Outbound policy (per connection, ``max_outbound_messages``): answer deltas are not queued
    while the queue is full; the engine merges them meanwhile, so a slow reader gets fewer,
    larger deltas and loses nothing. A newer ``stats`` replaces one not yet sent. Other messages
    (ready, answer_done, error, go_away) are always queued; if they alone overflow the queue to
    twice its size the client is not reading and the connection is closed (``slow_consumer``).
    """

    max_message_bytes: int = 8 << 20  # bytes of one client message (JSON text or binary media)
    max_image_width: int = 4096  # pixels
    max_image_height: int = 4096  # pixels
    max_image_pixels: int = 4096 * 2304  # width * height
    min_sample_rate: int = 8_000  # Hz of client PCM
    max_sample_rate: int = 96_000  # Hz
    max_channels: int = 8  # interleaved PCM channels
    max_fps: float = 30.0  # pictures per second a session may take in
    max_sessions: int = 32  # live sessions at once, all endpoints together
    max_session_s: float = 8 * 3600.0  # seconds a live session may last (then go_away, then closed)
    go_away_notice_s: float = 30.0  # seconds of warning before max_session_s ends a session
    idle_timeout_s: float = 300.0  # seconds without a client message before the session is closed
    max_outbound_messages: int = 256  # server messages queued per connection (policy above)
    stats_interval_s: float = 1.0  # seconds between stats messages (0: only after answers and at close)
    max_new_tokens: int = 1024  # tokens, the largest answer a client may ask for
    max_context_tokens: int | None = (
        None  # tokens, the largest KV budget a client may ask for (None: engine's)
    )
    max_question_chars: int = 16_384  # characters of one question
    max_text_chars: int = 65_536  # characters of one text turn or system prompt
    max_pending_bytes: int = 64 << 20  # bytes of media queued per session before frames drop
    max_pending_tokens: int = 16_384  # tokens queued per session before input is refused

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.name == "max_context_tokens":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputError(f"limit {f.name} must be a number, got {value!r}")
            low = 0 if f.name == "stats_interval_s" else 1e-9
            if value < low:
                raise InputError(f"limit {f.name} must be > 0, got {value!r}")
        if self.min_sample_rate > self.max_sample_rate:
            raise InputError("limit min_sample_rate is above max_sample_rate")
        if self.max_pending_bytes < 1 << 20:
            raise InputError("limit max_pending_bytes must be at least 1 MiB")
        if not 256 <= self.max_pending_tokens <= 1 << 24:
            raise InputError("limit max_pending_tokens must be in [256, 16777216]")

    def media_limits(self) -> MediaLimits:
        """The decoders' limits (image size, PCM rate/channels, payload bytes)."""
        return MediaLimits(
            max_width=self.max_image_width,
            max_height=self.max_image_height,
            max_pixels=self.max_image_pixels,
            min_sample_rate=self.min_sample_rate,
            max_sample_rate=self.max_sample_rate,
            max_channels=self.max_channels,
            max_image_bytes=self.max_message_bytes,
            max_chunk_bytes=self.max_message_bytes,
        )

    def public(self) -> dict[str, Any]:
        """What a client needs to know (sent in ``ready``)."""
        keys = (
            "max_message_bytes", "max_image_width", "max_image_height", "max_image_pixels",
            "min_sample_rate", "max_sample_rate", "max_channels", "max_fps", "max_session_s",
            "idle_timeout_s", "stats_interval_s", "max_new_tokens", "max_question_chars", "max_text_chars",
        )  # fmt: skip
        return {k: getattr(self, k) for k in keys}
