"""A session's out-of-answer events (e.g. an input that failed to prefill): a bounded queue.

The step thread puts and never blocks: past ``maxlen`` the oldest event is dropped and
counted. Readers wait synchronously (bounded by a timeout) or with ``await``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque

from streamer.engine.protocol import SessionEvent

__all__ = ["EventQueue"]


class EventQueue:
    def __init__(self, maxlen: int = 256):
        self._events: deque[SessionEvent] = deque(maxlen=maxlen)
        self._cond = threading.Condition(threading.Lock())
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.dropped = 0  # events lost because nobody read them

    def put(self, event: SessionEvent) -> None:
        with self._cond:
            if len(self._events) == self._events.maxlen:
                self.dropped += 1
            self._events.append(event)
            self._cond.notify_all()
            waiters = list(self._waiters)
        for loop, wake in waiters:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # that reader's loop is gone
                self._waiters.discard((loop, wake))

    def get(self, timeout: float | None = 0.0) -> SessionEvent | None:
        """The oldest event, waiting up to ``timeout`` s (None: no limit); None when there is none."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._events:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            return self._events.popleft()

    async def aget(self) -> SessionEvent:
        """The oldest event, awaiting one if needed (cancel the task to stop waiting)."""
        wake = asyncio.Event()
        key = (asyncio.get_running_loop(), wake)
        self._waiters.add(key)
        try:
            while True:
                wake.clear()
                event = self.get(0)
                if event is not None:
                    return event
                await wake.wait()
        finally:
            self._waiters.discard(key)

    def __len__(self) -> int:
        return len(self._events)
