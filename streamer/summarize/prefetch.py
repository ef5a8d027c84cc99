"""Decode ahead: a background thread pulls media items into a bounded queue.

PyAV and torch both release the GIL, so decoding the next seconds of media overlaps the
model's prefill of the current ones. The order of items is unchanged (the summary does not
depend on the thread).

Shutdown is supervised: :meth:`Prefetch.close` stops the thread and waits for it, and a
KeyboardInterrupt arriving meanwhile does not cut the wait short (it is raised again once the
thread has stopped). ``on_stopped`` (e.g. the media source's ``close``) is called exactly once,
after the reader has stopped: by ``close`` when the thread ends within ``timeout_s``, else by the
thread itself as it ends. A media container is therefore never closed under its decoder (which
crashes FFmpeg: a segfault or a double free).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

__all__ = ["Prefetch"]

T = TypeVar("T")
_END = object()
STOP_TIMEOUT_S = (
    60.0  # seconds close() waits for the thread (one item's decode; FFmpeg I/O times out at 20 s)
)


class Prefetch(Generic[T]):
    def __init__(
        self, items: Iterable[T], depth: int = 32, on_stopped: Callable[[], object] | None = None
    ) -> None:
        self._items = items
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._on_stopped = on_stopped
        self._handoff = threading.Lock()  # who runs on_stopped: close() or the thread, never both
        self._abandoned = False  # close() gave up waiting: the thread runs on_stopped as it ends
        self._reader_done = False  # the thread no longer touches the items' source
        self.busy_s = 0.0  # seconds the thread spent producing items (decoding)
        self.wait_s = 0.0  # seconds the consumer waited for an item
        self._thread = threading.Thread(target=self._run, name="streamer-decode", daemon=True)
        self._thread.start()

    def _put(self, value: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        iterator = iter(self._items)
        try:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                try:
                    item = next(iterator)
                except StopIteration:
                    break
                finally:
                    self.busy_s += time.perf_counter() - t0
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(exc)
            return
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                try:
                    close()  # a generator's finally blocks (its containers) run here, in this thread
                except Exception:
                    pass
            with self._handoff:
                self._reader_done = True
                if self._abandoned:
                    self._finish()
        self._put(_END)

    def __iter__(self) -> Iterator[T]:
        while True:
            t0 = time.perf_counter()
            value = self._queue.get()
            self.wait_s += time.perf_counter() - t0
            if value is _END:
                return
            if isinstance(value, BaseException):
                raise value
            yield value  # type: ignore[misc]

    @property
    def stopped(self) -> bool:
        """The reader is done: nothing touches the items' source any more."""
        with self._handoff:
            return self._reader_done

    def close(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop the thread and wait for it (it finishes the item it is decoding); then ``on_stopped``.

        Ctrl-C during the wait does not end it early: the KeyboardInterrupt is raised after.
        """
        self._stop.set()
        interrupted: KeyboardInterrupt | None = None
        deadline = time.monotonic() + timeout_s
        while not self.stopped and time.monotonic() < deadline:
            try:
                try:
                    self._queue.get_nowait()  # unblock a put()
                except queue.Empty:
                    self._thread.join(timeout=0.05)
            except KeyboardInterrupt as exc:
                interrupted = exc
        with self._handoff:
            if self._reader_done:
                self._finish()
            else:
                self._abandoned = True  # the thread calls on_stopped when it is done
        if interrupted is not None:
            raise interrupted

    def _finish(self) -> None:
        on_stopped, self._on_stopped = self._on_stopped, None
        if on_stopped is not None:
            on_stopped()

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
