"""The session API every front end uses, and the answer stream it returns.

Call order: ``engine.open_session()`` → any number of ``push_frame`` / ``push_audio`` /
``push_text`` → ``ask(question)`` (an :class:`AnswerStream` of text deltas, cancellable) →
more pushes and questions → ``close()``. Push methods are thread-safe and return at once;
the engine thread prefills what they queue. Times are seconds from the session's start.

Frames and audio are ordered by timestamp: a frame waits (at most ``max_held_frames``) until
the audio before it has arrived, so the sequence interleaves them as they happened.
"""

from __future__ import annotations

import asyncio
import enum
import queue
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from streamer.engine.sampling import ChoiceConstraint, SamplingParams
from streamer.engine.sequence import PendingUnit, SequenceBuilder
from streamer.errors import InputError, SessionError
from streamer.media.types import SAMPLE_RATE

if TYPE_CHECKING:
    from streamer.engine.engine import Engine

__all__ = [
    "Answer",
    "AnswerEvent",
    "AnswerStream",
    "FinishReason",
    "Session",
    "SessionConfig",
    "SessionState",
]


class SessionState(enum.IntEnum):
    OPEN = 0
    CLOSED = 1

    @property
    def is_finished(self) -> bool:
        return self is SessionState.CLOSED


class FinishReason(str, enum.Enum):
    STOP = "stop"  # a stop token
    LENGTH = "length"  # max_new_tokens
    CHOICE = "choice"  # a constrained answer completed
    CANCELLED = "cancelled"  # cancel() or a newer question
    CLOSED = "closed"  # the session closed
    ERROR = "error"  # the session hit an error (see AnswerEvent.error)


@dataclass
class SessionConfig:
    """Per-session settings; ``max_context_tokens`` None = the engine's default budget."""

    system_prompt: str | None = None
    max_context_tokens: int | None = None  # tokens, the full-attention KV budget
    evict_to_fraction: float = 0.75  # after an eviction the cache holds this share of the budget
    frame_soft_tokens: int = 70  # soft tokens per video frame (70/140/280/560/1120)
    audio_segment_s: float = 1.0  # seconds per <boa>…<eoa> segment (<= 30)
    max_pending_tokens: int = 65_536  # tokens queued but not yet prefilled before pushes are refused
    max_held_frames: int = 4  # frames waiting for audio before they go in anyway
    max_question_chars: int = 16_384  # characters


@dataclass
class AnswerEvent:
    """One streamed piece of an answer."""

    text: str  # new text (never a broken UTF-8 character)
    token_ids: list[int]  # ids generated with this event
    finish_reason: FinishReason | None = None  # set on the last event
    error: str | None = None  # message when finish_reason is ERROR


@dataclass
class Answer:
    """A finished answer with its figures."""

    text: str
    token_ids: list[int]
    finish_reason: FinishReason
    ttft_s: float  # seconds from ask() to the first token
    context_tokens: int  # tokens in the full-attention cache when the answer started
    evicted_tokens: int  # tokens evicted from the session so far
    error: str | None = None


class AnswerStream:
    """Events of one answer; iterate synchronously or with ``async for``; ``result()`` waits for the end."""

    def __init__(self) -> None:
        self._queue: queue.Queue[AnswerEvent] = queue.Queue()
        self._lock = threading.Lock()
        self._async: tuple[asyncio.AbstractEventLoop, asyncio.Queue[AnswerEvent]] | None = None
        self.asked_at = time.perf_counter()
        self.first_token_at: float | None = None
        self.context_tokens = 0
        self.evicted_tokens = 0
        self._text: list[str] = []
        self._ids: list[int] = []
        self.finish_reason: FinishReason | None = None
        self.error: str | None = None
        self._done = threading.Event()

    # engine side
    def emit(self, event: AnswerEvent) -> None:
        if self._done.is_set():
            return
        if event.token_ids and self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self._text.append(event.text)
        self._ids.extend(event.token_ids)
        if event.finish_reason is not None:
            self.finish_reason, self.error = event.finish_reason, event.error
        with self._lock:
            if self._async is not None:
                loop, aq = self._async
                loop.call_soon_threadsafe(aq.put_nowait, event)
            else:
                self._queue.put(event)
        if event.finish_reason is not None:
            self._done.set()

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    # consumer side
    def __iter__(self) -> Iterator[AnswerEvent]:
        while True:
            event = self._queue.get()
            yield event
            if event.finish_reason is not None:
                return

    def drain(self) -> list[AnswerEvent]:
        """The events already queued, without waiting (for callers that step the engine themselves)."""
        events = []
        while not self._queue.empty():
            events.append(self._queue.get_nowait())
        return events

    async def __aiter__(self) -> AsyncIterator[AnswerEvent]:
        loop = asyncio.get_running_loop()
        aq: asyncio.Queue[AnswerEvent] = asyncio.Queue()
        with self._lock:
            while not self._queue.empty():
                aq.put_nowait(self._queue.get_nowait())
            self._async = (loop, aq)
        while True:
            event = await aq.get()
            yield event
            if event.finish_reason is not None:
                return

    def result(self, timeout: float | None = None) -> Answer:
        """Block until the answer ends (the engine must be running, or be stepped by another thread)."""
        if not self._done.wait(timeout):
            raise SessionError("timed out waiting for the answer")
        ttft = (self.first_token_at - self.asked_at) if self.first_token_at is not None else float("nan")
        assert self.finish_reason is not None
        return Answer(
            "".join(self._text),
            list(self._ids),
            self.finish_reason,
            ttft,
            self.context_tokens,
            self.evicted_tokens,
            self.error,
        )


@dataclass
class _Question:
    stream: AnswerStream
    params: SamplingParams
    constraint: ChoiceConstraint | None  # set when params.choices is


@dataclass
class _Inbox:
    """Work queued by the pushing threads for the engine thread."""

    units: deque[PendingUnit] = field(default_factory=deque)
    questions: deque[_Question] = field(default_factory=deque)
    pending_tokens: int = 0


class Session:
    """A live session. Create with :meth:`Engine.open_session`."""

    def __init__(self, engine: Engine, session_id: int, config: SessionConfig, builder: SequenceBuilder):
        self.engine = engine
        self.id = session_id
        self.config = config
        self.state = SessionState.OPEN
        self._builder = builder
        self._lock = threading.Lock()
        self._inbox = _Inbox()
        self._t0 = time.monotonic()
        self._last_frame_t = float("-inf")
        self._audio_t: float | None = None  # time of the next audio sample expected
        self._audio_buf: list[np.ndarray] = []
        self._audio_buf_len = 0
        self._audio_buf_t = 0.0
        self._held: list[tuple[float, np.ndarray]] = []
        self._enqueue(builder.start(config.system_prompt))

    # ---- helpers (caller holds self._lock) ----------------------------------------------------
    def _now(self) -> float:
        return time.monotonic() - self._t0

    def _check_open(self) -> None:
        if self.state.is_finished:
            raise SessionError(f"session {self.id} is closed")

    def _enqueue(self, units: list[PendingUnit]) -> None:
        tokens = sum(u.unit.tokens for u in units)
        if self._inbox.pending_tokens + tokens > self.config.max_pending_tokens and not any(
            u.question for u in units
        ):
            raise SessionError(
                f"session {self.id}: {self._inbox.pending_tokens} tokens are still waiting for prefill; "
                "input is arriving faster than the engine can take it"
            )
        self._inbox.pending_tokens += tokens
        self._inbox.units.extend(units)
        self.engine._wake()

    def _release_frames(self, until: float | None) -> None:
        keep = []
        for t, image in self._held:
            if until is None or t <= until:
                self._enqueue(self._builder.frame(image, t))
            else:
                keep.append((t, image))
        self._held = keep

    def _emit_audio_segment(self, final: bool) -> None:
        seg_len = self._builder.samples_per_segment
        while self._audio_buf_len >= seg_len or (final and self._audio_buf_len > 0):
            samples = np.concatenate(self._audio_buf) if len(self._audio_buf) > 1 else self._audio_buf[0]
            take = min(seg_len, len(samples))
            segment, rest = samples[:take], samples[take:]
            self._audio_buf = [rest] if len(rest) else []
            self._audio_buf_len = len(rest)
            start = self._audio_buf_t
            self._audio_buf_t += take / SAMPLE_RATE
            self._release_frames(start)
            n = self.engine.samples_per_token
            padded = np.pad(segment, (0, (-len(segment)) % n))  # the reference pads the tail with zeros
            self._enqueue(self._builder.audio(padded.reshape(-1, n), start))

    # ---- public API ---------------------------------------------------------------------------
    def push_frame(self, image: np.ndarray, t_s: float | None = None) -> None:
        """A video frame (uint8 RGB ``[H, W, 3]``) shown at ``t_s`` (default: now)."""
        with self._lock:
            self._check_open()
            t = self._now() if t_s is None else float(t_s)
            if not np.isfinite(t) or t < 0:
                raise InputError(f"frame timestamp must be a finite number >= 0, got {t_s}")
            if t < self._last_frame_t:
                raise InputError(f"out-of-order frame: {t:.3f}s after a frame at {self._last_frame_t:.3f}s")
            image = np.asarray(image)
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
                raise InputError(f"a frame must be uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
            self._last_frame_t = t
            self._held.append((t, image))
            if self._audio_t is None or len(self._held) > self.config.max_held_frames:
                self._release_frames(None if self._audio_t is None else self._held[0][0])

    def push_audio(self, samples: np.ndarray, t_s: float | None = None) -> None:
        """Mono 16 kHz float32 samples starting at ``t_s`` (default: right after the previous audio)."""
        with self._lock:
            self._check_open()
            samples = np.asarray(samples)
            if samples.ndim != 1 or samples.size == 0:
                raise InputError(
                    f"audio must be a non-empty 1-D array of 16 kHz samples, got shape {list(samples.shape)}"
                )
            if samples.dtype != np.float32:
                samples = samples.astype(np.float32)
            if not np.isfinite(samples).all():
                raise InputError("audio contains NaN or infinite samples")
            expected = (
                self._audio_t if self._audio_t is not None else (self._now() if t_s is None else float(t_s))
            )
            t = expected if t_s is None else float(t_s)
            if not np.isfinite(t) or t < 0:
                raise InputError(f"audio timestamp must be a finite number >= 0, got {t_s}")
            if self._audio_t is not None and t < self._audio_t - 0.05:
                raise InputError(
                    f"out-of-order audio: starts at {t:.3f}s, previous audio ends at {self._audio_t:.3f}s"
                )
            if self._audio_t is None:
                self._audio_buf_t = t
            elif t > self._audio_t + 0.05:
                # A gap: close the running segment; the next one starts at the new time.
                self._emit_audio_segment(final=True)
                self._audio_buf_t = t
            self._audio_buf.append(samples)
            self._audio_buf_len += len(samples)
            self._audio_t = t + len(samples) / SAMPLE_RATE
            self._emit_audio_segment(final=False)

    def push_text(self, text: str, role: str = "user") -> None:
        """A complete chat turn that is not a question (context, notes, instructions)."""
        with self._lock:
            self._check_open()
            self._flush_media()
            self._enqueue(self._builder.turn(role, text))

    def _flush_media(self) -> None:
        self._emit_audio_segment(final=True)
        self._release_frames(None)

    def ask(self, question: str, params: SamplingParams | None = None) -> AnswerStream:
        """Queue a question after everything pushed so far; a running answer is cancelled."""
        params = params or SamplingParams()
        if not question.strip():
            raise InputError("the question is empty")
        if len(question) > self.config.max_question_chars:
            raise InputError(f"the question is longer than {self.config.max_question_chars} characters")
        stream = AnswerStream()
        constraint = self.engine._make_constraint(params)  # validates choices before queueing
        self._check_open()
        self.engine._cancel_answer(self, FinishReason.CANCELLED)  # engine lock first, never inside ours
        with self._lock:
            self._check_open()
            self._flush_media()
            units = self._builder.question(question)
            self._inbox.questions.append(_Question(stream, params, constraint))
            self._enqueue(units)
        return stream

    def cancel(self) -> None:
        """Stop the running answer (its tokens so far stay in the context)."""
        self.engine._cancel_answer(self, FinishReason.CANCELLED)

    def close(self) -> None:
        """End the session: answers end with ``closed``; its caches are freed by the engine."""
        with self._lock:
            if self.state.is_finished:
                return
            self.state = SessionState.CLOSED
        self.engine._close_session(self)
