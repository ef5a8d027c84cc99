"""Decode ahead: a background thread pulls media items into a bounded queue.

PyAV and torch both release the GIL, so decoding the next seconds of media overlaps the
model's prefill of the current ones. The order of items is unchanged (the summary does not
depend on the thread). Use as a context manager; leaving it stops and joins the thread, so
the media source may be closed right after.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

__all__ = ["Prefetch"]

T = TypeVar("T")
_END = object()


class Prefetch(Generic[T]):
    def __init__(self, items: Iterable[T], depth: int = 32):
        self._items = items
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
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

    def close(self) -> None:
        """Stop the thread and wait for it (it finishes the item it is decoding)."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get_nowait()
            except queue.Empty:
                self._thread.join(timeout=0.05)

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
