"""Per-request output collectors: how answers travel from the step thread to their readers.

An :class:`AnswerStream` belongs to one question. The step thread :meth:`~AnswerStream.put`\\ s
deltas and :meth:`~AnswerStream.finish`\\ es it; neither ever blocks or raises. While the reader
is behind, deltas are merged into one pending event (as vLLM's ``RequestOutputCollector``
does), so a slow reader costs the answer's text at most, never a growing queue of events.

Readers iterate synchronously or with ``async for``; every wait is bounded: the stream checks
the engine's liveness while it waits and ends with ``error`` / ``unavailable`` if the engine
died. Leaving the iteration early (``break``, a dropped connection, a closed event loop)
cancels the answer.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator

from streamer.engine.protocol import Answer, AnswerEvent, ErrorCode, FinishReason, new_request_id
from streamer.errors import SessionError

__all__ = ["AnswerStream"]

_POLL_S = 0.25  # how often a waiting reader checks that the engine is alive


class AnswerStream:
    """The events of one answer; iterate (sync or async), or wait for :meth:`result`."""

    def __init__(
        self,
        session_id: str = "",
        request_id: str | None = None,
        alive: Callable[[], str | None] = lambda: None,
        on_cancel: Callable[[], None] = lambda: None,
    ) -> None:
        self.session_id = session_id
        self.request_id = request_id or new_request_id()
        self.asked_at = time.perf_counter()
        self.first_token_at: float | None = None
        self.context_tokens = 0  # set when the answer starts
        self.evicted_tokens = 0
        self._alive = alive  # None while the engine serves, else why it cannot
        self._on_cancel = on_cancel  # wakes the engine so it stops decoding
        self._cond = threading.Condition(threading.Lock())
        self._text: list[str] = []  # every piece so far (for result())
        self._ids: list[int] = []
        self._pending_text: list[str] = []  # not yet read
        self._pending_ids: list[int] = []
        self._final: AnswerEvent | None = None  # the finishing event, once known
        self._delivered_final = False
        self._async_wake: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self.cancelled = False  # the engine must stop working on it

    # ---- engine side (never blocks, never raises) ----------------------------------------------
    def put(self, text: str, token_ids: list[int]) -> None:
        with self._cond:
            if self._final is not None:
                return
            if token_ids and self.first_token_at is None:
                self.first_token_at = time.perf_counter()
            self._text.append(text)
            self._ids.extend(token_ids)
            self._pending_text.append(text)
            self._pending_ids.extend(token_ids)
            self._cond.notify_all()
        self._wake_async()

    def finish(self, reason: FinishReason, error: str | None = None, code: ErrorCode | None = None) -> bool:
        """End the answer (once; later calls are ignored). True if this call ended it."""
        if reason is FinishReason.ERROR and code is None:
            code = ErrorCode.INTERNAL
        with self._cond:
            if self._final is not None:
                return False
            self._final = AnswerEvent("", [], reason, error, code)
            self._cond.notify_all()
        self._wake_async()
        return True

    def _wake_async(self) -> None:
        wake = self._async_wake
        if wake is None:
            return
        loop, event = wake
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # the reader's event loop is closed: nobody will read this answer
            self._async_wake = None
            self.cancelled = True
            self.finish(FinishReason.CANCELLED)

    # ---- reader side ---------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self._final is not None

    @property
    def finish_reason(self) -> FinishReason | None:
        return None if self._final is None else self._final.finish_reason

    def cancel(self) -> None:
        """Stop this answer now (the reader sees ``cancelled``; the engine stops at its next step)."""
        self.cancelled = True
        if self.finish(FinishReason.CANCELLED):
            self._on_cancel()

    def _take(self) -> AnswerEvent | None:
        """The merged pending delta, or the final event once everything before it was read."""
        if self._pending_text or self._pending_ids:
            event = AnswerEvent("".join(self._pending_text), list(self._pending_ids))
            self._pending_text.clear()
            self._pending_ids.clear()
            if self._final is not None and not self._delivered_final:  # fold the end into the last delta
                self._delivered_final = True
                event.finish_reason, event.error, event.code = (
                    self._final.finish_reason,
                    self._final.error,
                    self._final.code,
                )
            return event
        if self._final is not None and not self._delivered_final:
            self._delivered_final = True
            return self._final
        return None

    def _check_engine(self) -> None:
        why = self._alive()
        if why is not None:
            self.finish(FinishReason.ERROR, why, ErrorCode.UNAVAILABLE)

    def _wait(self, deadline: float | None) -> bool:
        """One bounded wait on the condition (held); checks the engine when nothing came. False: deadline."""
        left = _POLL_S if deadline is None else min(_POLL_S, deadline - time.monotonic())
        if left <= 0:
            return False
        if not self._cond.wait(left):
            self._cond.release()
            try:
                self._check_engine()
            finally:
                self._cond.acquire()
        return True

    def next_event(self, timeout: float | None = None) -> AnswerEvent | None:
        """The next event, waiting at most ``timeout`` seconds (None: until one comes); None if none."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                event = self._take()
                if event is not None or self._delivered_final:
                    return event
                if not self._wait(deadline):
                    return None

    def __iter__(self) -> Iterator[AnswerEvent]:
        try:
            while True:
                event = self.next_event()
                if event is None:
                    return
                yield event
                if event.finish_reason is not None:
                    return
        finally:
            if not self._delivered_final:
                self.cancel()  # the reader left early

    async def __aiter__(self) -> AsyncIterator[AnswerEvent]:
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        self._async_wake = (loop, wake)
        try:
            while True:
                with self._cond:
                    event = self._take()
                    done = self._delivered_final
                if event is not None:
                    yield event
                    if event.finish_reason is not None:
                        return
                    continue
                if done:
                    return
                wake.clear()
                with self._cond:
                    ready = bool(self._pending_text or self._pending_ids) or (
                        self._final is not None and not self._delivered_final
                    )
                if not ready:
                    try:
                        await asyncio.wait_for(wake.wait(), _POLL_S)
                    except asyncio.TimeoutError:
                        self._check_engine()
        finally:
            self._async_wake = None
            if not self._delivered_final:
                self.cancel()  # the reader left early (break, a dropped connection, task cancelled)

    async def aresult(self, timeout: float | None = None) -> Answer:
        """Await the end (at most ``timeout`` s; SessionError after) and return the whole answer."""

        async def consume() -> None:
            async for _ in self:
                pass

        try:
            await asyncio.wait_for(consume(), timeout)
        except asyncio.TimeoutError:
            raise SessionError(f"timed out waiting for answer {self.request_id}") from None
        return self.result(0)

    def drain(self) -> list[AnswerEvent]:
        """The events available now, without waiting."""
        events = []
        with self._cond:
            while (event := self._take()) is not None:
                events.append(event)
        return events

    def result(self, timeout: float | None = None) -> Answer:
        """Wait for the end (at most ``timeout`` s; SessionError after) and return the whole answer."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._final is None:
                if not self._wait(deadline):
                    raise SessionError(f"timed out waiting for answer {self.request_id}")
            final = self._final
            text, ids = "".join(self._text), list(self._ids)
        ttft = None if self.first_token_at is None else self.first_token_at - self.asked_at
        assert final.finish_reason is not None
        return Answer(
            self.request_id,
            text,
            ids,
            final.finish_reason,
            ttft,
            self.context_tokens,
            self.evicted_tokens,
            final.error,
            final.code,
        )
