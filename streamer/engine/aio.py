"""The asyncio face of the engine: awaitable calls that never wait on model work.

    engine = AsyncEngine(Engine(loaded, tokenizer))      # or AsyncEngine(FakeEngine())
    async with engine:
        session = await engine.open_session(SessionConfig())
        await session.push_frame(rgb, t_s=0.0)
        async for event in session.ask("What do you see?"):
            print(event.text, end="")

Pushes and questions only order and queue (the sync methods already return at once), so
they run inline; calls that do wait for the step thread (snapshots) go to a worker thread.
Leaving an ``async for`` early, or a cancelled task, cancels the answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from streamer.engine.collector import AnswerStream
from streamer.engine.protocol import (
    Command,
    Health,
    PushResult,
    SamplingParams,
    SessionConfig,
    SessionEvent,
    SessionStats,
)
from streamer.engine.runtime import EngineLoop
from streamer.engine.session import Session

__all__ = ["AsyncEngine", "AsyncSession"]


class AsyncSession:
    def __init__(self, session: Session):
        self.session = session

    @property
    def id(self) -> str:
        return self.session.id

    @property
    def closed(self) -> bool:
        return self.session.closed

    async def push_frame(self, image: Any, t_s: float | None = None, *, seq: int | None = None) -> PushResult:
        return self.session.push_frame(image, t_s, seq=seq)

    async def push_audio(
        self, samples: Any, t_s: float | None = None, *, seq: int | None = None
    ) -> PushResult:
        return self.session.push_audio(samples, t_s, seq=seq)

    async def push_text(self, text: str, role: str = "user", *, seq: int | None = None) -> PushResult:
        return self.session.push_text(text, role, seq=seq)

    def ask(
        self,
        question: str,
        params: SamplingParams | None = None,
        *,
        request_id: str | None = None,
        seq: int | None = None,
    ) -> AnswerStream:
        """The answer stream (``async for`` it, or ``await stream.aresult()``)."""
        return self.session.ask(question, params, request_id=request_id, seq=seq)

    async def cancel(self, request_id: str | None = None) -> None:
        self.session.cancel(request_id)

    async def close(self) -> None:
        self.session.close()

    def stats(self) -> SessionStats:
        return self.session.stats()

    async def next_event(self) -> SessionEvent:
        return await self.session.aevent()

    async def wait_idle(self, timeout: float | None = None) -> bool:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self.session.idle:
            if self.session.engine.unavailable() is not None or (
                deadline is not None and loop.time() > deadline
            ):
                return False
            await asyncio.sleep(0.005)
        return True


class AsyncEngine:
    def __init__(self, engine: EngineLoop):
        self.engine = engine

    async def open_session(
        self, config: SessionConfig | None = None, session_id: str | None = None
    ) -> AsyncSession:
        return AsyncSession(self.engine.open_session(config, session_id))

    def resolve_config(self, config: SessionConfig) -> SessionConfig:
        """See :meth:`EngineLoop.resolve_config` (pure and quick: no model work, no await)."""
        return self.engine.resolve_config(config)

    def get_session(self, session_id: str) -> AsyncSession:
        return AsyncSession(self.engine.get_session(session_id))

    async def submit(self, command: Command) -> Any:
        result = self.engine.submit(command)
        return AsyncSession(result) if isinstance(result, Session) else result

    def health(self) -> Health:
        return self.engine.health()

    async def call(self, fn: Any, *args: Any) -> Any:
        """Run a blocking engine call (e.g. ``export_session``) in a worker thread."""
        return await asyncio.to_thread(fn, *args)

    async def start(self) -> None:
        self.engine.start()

    async def stop(self, grace_s: float = 0.0) -> None:
        await asyncio.to_thread(self.engine.stop, grace_s)

    async def __aenter__(self) -> AsyncEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
