"""A session's bounded input queue, between the pushing threads and the step thread.

Bounded in tokens and in bytes (frames wait as compact uint8 pictures; the step thread
preprocesses them). The overload policy is decided in :meth:`Inbox.offer` before anything
changes: when a push does not fit, the oldest video frames not yet prefilled are dropped
(queued ones first, then the incoming ones) and counted; audio, text and questions are never
dropped: if they still do not fit, the whole push is refused with the reason and nothing moves.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from streamer.engine.protocol import ErrorCode, PushResult, PushStatus
from streamer.engine.timeline import FrameItem, Item, QuestionItem

__all__ = ["Inbox"]


class Inbox:
    """Thread-safe; every method holds the lock for list work only (never model work)."""

    def __init__(self, max_tokens: int, max_bytes: int, estimate: Callable[[Item], int]):
        self.max_tokens = max_tokens
        self.max_bytes = max_bytes
        # tokens an item will take: exact for media, ~bytes/2 for text until it is tokenized (not a
        # bound: max_bytes is the hard one)
        self.estimate = estimate
        self._lock = threading.Lock()
        self._items: deque[tuple[Item, int]] = deque()
        self.queued_tokens = 0
        self.queued_bytes = 0
        self.dropped_frames = 0
        self.last_consumed_seq: int | None = None
        self.in_flight = 0  # items taken by the step thread and not yet prefilled (see done())
        self.paused = False  # while True the step thread takes nothing (see Session.pause_prefill)

    def _fits(self, tokens: int, nbytes: int) -> bool:
        return tokens <= self.max_tokens and nbytes <= self.max_bytes

    def offer(self, items: list[Item], pushed: FrameItem | None = None) -> PushResult:
        """Queue ``items`` (in order) or refuse them all; ``pushed`` is the frame this push carried."""
        sized = [(item, self.estimate(item)) for item in items]
        with self._lock:
            tokens = self.queued_tokens + sum(n for _, n in sized)
            nbytes = self.queued_bytes + sum(i.nbytes for i, _ in sized)
            drop_queued: list[int] = []
            for index, (item, n) in enumerate(self._items):
                if self._fits(tokens, nbytes):
                    break
                if isinstance(item, FrameItem):
                    drop_queued.append(index)
                    tokens, nbytes = tokens - n, nbytes - item.nbytes
            drop_incoming: list[FrameItem] = []
            for item, n in sized:
                if self._fits(tokens, nbytes):
                    break
                if isinstance(item, FrameItem):
                    drop_incoming.append(item)
                    tokens, nbytes = tokens - n, nbytes - item.nbytes
            keep = [(i, n) for i, n in sized if not any(i is d for d in drop_incoming)]
            if not self._fits(tokens, nbytes):
                return PushResult(PushStatus.REFUSED, reason=self._refusal(keep), code=ErrorCode.QUEUE_FULL)
            if drop_queued:
                gone = set(drop_queued)
                self._items = deque(x for i, x in enumerate(self._items) if i not in gone)
            self._items.extend(keep)
            self.queued_tokens, self.queued_bytes = tokens, nbytes
            dropped = len(drop_queued) + len(drop_incoming)
            self.dropped_frames += dropped
        if pushed is not None and any(f is pushed for f in drop_incoming):
            return PushResult(PushStatus.DROPPED, dropped, "dropped under overload", ErrorCode.QUEUE_FULL)
        return PushResult(PushStatus.ACCEPTED, dropped)

    def _refusal(self, keep: list[tuple[Item, int]]) -> str:
        """Why a push was refused: the queue is busy (retry later), or the push alone is larger than it."""
        limits = f"limits {self.max_tokens} tokens, {self.max_bytes} bytes"
        tokens, nbytes = sum(n for _, n in keep), sum(i.nbytes for i, _ in keep)
        if not self._fits(tokens, nbytes):  # even an empty queue cannot take it: waiting will not help
            return (
                f"this input (about {tokens} tokens, {nbytes} bytes) is larger than the session's whole input "
                f"queue ({limits}): send it in smaller pieces"
            )
        return (
            f"the session's input queue is full ({self.queued_tokens} tokens, {self.queued_bytes} bytes "
            f"waiting; {limits}): input is arriving faster than the engine can take it"
        )

    def take(self, max_tokens: int, at_least_one: bool = True) -> list[Item]:
        """Items from the front up to ``max_tokens``, ending at a question; call :meth:`done` for each later."""
        out: list[Item] = []
        with self._lock:
            if self.paused:
                return out
            taken = 0
            while self._items:
                item, n = self._items[0]
                if (out or not at_least_one) and taken + n > max_tokens:
                    break
                self._items.popleft()
                out.append(item)
                taken += n
                self.queued_tokens -= n
                self.queued_bytes -= item.nbytes
                if item.seq is not None:
                    self.last_consumed_seq = item.seq
                if isinstance(item, QuestionItem):
                    break
            self.in_flight += len(out)
        return out

    def done(self, count: int = 1) -> None:
        """``count`` taken items are in the context (or were reported as failed)."""
        with self._lock:
            self.in_flight -= count

    @property
    def pending(self) -> int:
        """Items queued or in the step thread's hands."""
        with self._lock:
            return len(self._items) + self.in_flight

    def clear(self) -> list[Item]:
        """Remove and return everything queued (the session is closing)."""
        with self._lock:
            items = [item for item, _ in self._items]
            self._items.clear()
            self.queued_tokens = self.queued_bytes = 0
        return items

    def sizes(self) -> tuple[tuple[int, ...], bool]:
        """Estimated tokens of each queued item, and whether a question is among them."""
        with self._lock:
            if self.paused:
                return (), False
            return tuple(n for _, n in self._items), any(isinstance(i, QuestionItem) for i, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)
