"""What the live connections of one server share: the engine, the limits, the session count, drain.

    hub = LiveHub(AsyncEngine(engine), ServeLimits(), observer=ServeMetrics())
    proto = hub.connect(peer)          # per connection (WebSocket, gRPC Live, ...): see streamer.serve.live
    await hub.drain(grace_s)           # on SIGTERM: go_away, answers finish within grace_s, sessions end

:class:`LiveObserver` is how the protocol reports events for metrics without importing
prometheus (:class:`streamer.serve.metrics.ServeMetrics` implements it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from streamer.engine.protocol import ErrorCode
from streamer.serve.limits import ServeLimits
from streamer.serve.live import LiveProtocol
from streamer.serve.messages import AnswerDone, Error

if TYPE_CHECKING:
    from streamer.engine.aio import AsyncEngine

__all__ = ["LiveHub", "LiveObserver"]


class LiveObserver:
    """Hooks for metrics; these defaults do nothing (:mod:`streamer.serve.metrics` records them)."""

    def connection_opened(self) -> None: ...

    def connection_closed(self) -> None: ...

    def message_received(self, kind: str, nbytes: int) -> None: ...  # kind: the message TYPE

    def ingest_done(self, kind: str, seconds: float) -> None: ...  # seconds spent handling a frame/audio

    def frame_skipped(self) -> None: ...  # a picture over the session's fps, not decoded

    def error_sent(self, code: str) -> None: ...

    def answer_done(self, done: AnswerDone) -> None: ...


class LiveHub:
    """What the live connections of one server share: the engine, limits, session count, drain."""

    def __init__(
        self,
        engine: AsyncEngine,
        limits: ServeLimits | None = None,
        observer: LiveObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.engine = engine
        self.limits = limits or ServeLimits()
        self.observer = observer or LiveObserver()
        self.clock = clock
        self.connections: set[LiveProtocol] = set()
        self.draining = False

    def connect(self, peer: str = "", audio_in_bursts: bool = False) -> LiveProtocol:
        """A protocol for a new connection (registered until its ``connection_lost``); see LiveProtocol
        for ``audio_in_bursts``."""
        proto = LiveProtocol(self, peer, audio_in_bursts)
        self.connections.add(proto)
        self.observer.connection_opened()
        return proto

    def forget(self, proto: LiveProtocol) -> None:
        if proto in self.connections:
            self.connections.discard(proto)
            self.observer.connection_closed()

    @property
    def sessions(self) -> int:
        """Connections holding a session (or setting one up)."""
        return sum(1 for p in self.connections if p.holds_session)

    def admit(self) -> Error | None:
        """None if one more session may open now, else the error to send."""
        if self.draining:
            return Error(ErrorCode.UNAVAILABLE.value, "the server is shutting down", fatal=True)
        if self.sessions >= self.limits.max_sessions:
            return Error(
                ErrorCode.SESSION_LIMIT.value,
                f"the server already serves its maximum of {self.limits.max_sessions} live sessions",
                fatal=True,
            )
        return None

    async def drain(self, grace_s: float) -> None:
        """Shut down: ``go_away`` to every session, let answers finish for ``grace_s``, end the rest."""
        self.draining = True
        for proto in list(self.connections):
            proto.go_away(grace_s, "the server is shutting down")
        deadline = self.clock() + grace_s
        while self.clock() < deadline and any(p.answering for p in self.connections):
            await asyncio.sleep(0.02)
        for proto in list(self.connections):
            await proto.shutdown("the server is shutting down")
        deadline = self.clock() + 2.0  # let the adapters write the last messages
        while self.connections and self.clock() < deadline:
            await asyncio.sleep(0.02)
