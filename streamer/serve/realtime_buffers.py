"""The two buffers of a /v1/realtime connection: server events going out, input audio not yet committed.

:class:`Outbox` — the writer awaits :meth:`Outbox.next`; the protocol :meth:`Outbox.put`\\ s events and awaits
:meth:`Outbox.room` before it takes more answer deltas from the live core (which merges them
meanwhile, so a slow reader gets fewer, larger deltas). Past twice ``limit`` queued events the
client is not reading: :meth:`put` returns False and the protocol ends the connection
(``slow_consumer``), as :class:`~streamer.serve.limits.ServeLimits` describes for /v1/live.

:class:`InputAudioBuffer` — ``input_audio_buffer.append`` adds PCM (checked, bounded),
``commit`` takes it all with the time its first chunk arrived, ``clear`` drops it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from streamer.serve.realtime_events import RealtimeError
from streamer.serve.realtime_session import AudioFormat

__all__ = ["InputAudioBuffer", "MIN_COMMIT_S", "Outbox"]

MIN_COMMIT_S = 0.1  # seconds: a shorter buffer is refused on commit, as OpenAI does


class Outbox:
    def __init__(self, limit: int):
        self.limit = (
            limit  # events queued before the protocol waits for room (ServeLimits.max_outbound_messages)
        )
        self.ended = False  # nothing more is queued; next() returns None once the queue is empty
        self._queue: deque[dict[str, Any]] = deque()
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, event: dict[str, Any]) -> bool:
        """Queue an event (ignored once ended); False when the queue overflowed (it was cleared)."""
        if self.ended:
            return True
        self._queue.append(event)
        self._ready.set()
        if len(self._queue) >= 2 * self.limit:
            self._queue.clear()
            return False
        return True

    async def next(self) -> dict[str, Any] | None:
        """The next event to send; None once ended and empty."""
        while not self._queue:
            if self.ended:
                return None
            self._ready.clear()
            await self._ready.wait()
        event = self._queue.popleft()
        if len(self._queue) < self.limit:
            self._room.set()
        return event

    def take_all(self) -> list[dict[str, Any]]:
        """Every queued event now, without waiting."""
        out = list(self._queue)
        self._queue.clear()
        self._room.set()
        return out

    async def room(self) -> None:
        """Wait until fewer than ``limit`` events are queued (or the outbox ended)."""
        while len(self._queue) >= self.limit and not self.ended:
            self._room.clear()
            await self._room.wait()

    def end(self) -> None:
        """No more events: the writer drains what is queued, then gets None."""
        self.ended = True
        self._room.set()
        self._ready.set()


class InputAudioBuffer:
    """PCM in the session's input format, appended until committed or cleared."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.first_at: float | None = None  # clock time of the first non-empty append

    def __len__(self) -> int:
        return len(self.data)

    def append(self, data: bytes, fmt: AudioFormat, max_s: float, now: float) -> None:
        """Add one chunk (RealtimeError if it is not whole samples or the buffer would pass ``max_s``)."""
        if fmt.type == "audio/pcm" and len(data) % 2:
            raise RealtimeError(
                "audio must be whole 16-bit samples (an even number of bytes)", "invalid_value", "audio"
            )
        if (len(self.data) + len(data)) / fmt.bytes_per_second > max_s:
            raise RealtimeError(
                f"the input audio buffer holds at most {max_s:.0f} s of audio: commit or clear it",
                "input_audio_buffer_full",
                "audio",
            )
        if data and self.first_at is None:
            self.first_at = now
        self.data += data

    def take(self, fmt: AudioFormat) -> tuple[bytes, float | None]:
        """Everything buffered and the time it started (RealtimeError under MIN_COMMIT_S); the buffer empties."""
        have_s = len(self.data) / fmt.bytes_per_second
        if have_s < MIN_COMMIT_S:
            raise RealtimeError(
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, "
                f"but buffer only has {have_s * 1000:.2f}ms of audio.",
                "input_audio_buffer_commit_empty",
            )
        out = bytes(self.data), self.first_at
        self.clear()
        return out

    def clear(self) -> None:
        self.data.clear()
        self.first_at = None
