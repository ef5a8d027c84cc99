"""The session API every front end uses (sync; :mod:`streamer.engine.aio` wraps it for asyncio).

Call order: ``engine.open_session()`` → any number of ``push_frame`` / ``push_audio`` /
``push_text`` → ``ask(question)`` (an :class:`~streamer.engine.collector.AnswerStream`) → more
pushes and questions → ``close()``. Times are seconds from the session's start.

Every method returns at once: a push only orders and queues (the step thread tokenizes,
preprocesses and prefills), so it is safe to call from an event loop. A push returns a
:class:`~streamer.engine.protocol.PushResult` decided before anything changed: accepted,
dropped (a frame, under overload) or refused (the queue is full; nothing was queued).
Malformed input raises :class:`~streamer.errors.InputError`; a closed session raises
:class:`~streamer.errors.SessionError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamer.engine.collector import AnswerStream
from streamer.engine.protocol import (
    Answer,
    AnswerEvent,
    ErrorCode,
    FinishReason,
    PushResult,
    PushStatus,
    SamplingParams,
    SessionConfig,
    SessionEvent,
    SessionStats,
    check_text,
)
from streamer.engine.timeline import ROLES, QuestionItem, TextItem
from streamer.errors import InputError

if TYPE_CHECKING:
    from streamer.engine.runtime import EngineLoop, SessionRecord

__all__ = ["Answer", "AnswerEvent", "AnswerStream", "FinishReason", "Session", "SessionConfig"]


class Session:
    """A live session (a thin handle: several handles to one session id are the same session)."""

    def __init__(self, engine: EngineLoop, record: SessionRecord):
        self.engine = engine
        self._record = record

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def record(self) -> SessionRecord:
        """The state this session shares with the engine (for engine-side code, not clients)."""
        return self._record

    @property
    def config(self) -> SessionConfig:
        return self._record.config

    @property
    def closed(self) -> bool:
        return self._record.closed

    def _check_open(self) -> None:
        if self._record.closed:
            from streamer.engine.runtime import session_error

            raise session_error(f"session {self.id} is closed", ErrorCode.SESSION_CLOSED)

    def _push(self, make, pushed_frame: bool = False) -> PushResult:  # noqa: ANN001 - make(timeline) -> items
        record = self._record
        with record.lock:
            self._check_open()
            trial = record.timeline.clone()
            items = make(trial)  # validates; raises before any state changed
            pushed = trial.held[-1] if pushed_frame and trial.held else None
            if pushed_frame and pushed is None:
                pushed = next((i for i in reversed(items) if getattr(i, "image", None) is not None), None)
            result = self.engine.offer(record, items, pushed)
            if result.status is not PushStatus.REFUSED:
                record.timeline = trial
        record.touch()
        return result

    # ---- pushes --------------------------------------------------------------------------------
    def push_frame(self, image: object, t_s: float | None = None, *, seq: int | None = None) -> PushResult:
        """A video frame (uint8 RGB ``[H, W, 3]``) shown at ``t_s`` (default: now)."""
        return self._push(lambda tl: tl.push_frame(image, t_s, seq), pushed_frame=True)

    def push_audio(self, samples: object, t_s: float | None = None, *, seq: int | None = None) -> PushResult:
        """Mono 16 kHz samples starting at ``t_s`` (default: right after the previous audio)."""
        return self._push(lambda tl: tl.push_audio(samples, t_s, seq))

    def push_text(self, text: str, role: str = "user", *, seq: int | None = None) -> PushResult:
        """A complete chat turn that is not a question (context, notes, instructions)."""
        check_text(text, "text", max_chars=1 << 20)
        if role not in ROLES:
            raise InputError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
        return self._push(lambda tl: [*tl.flush(seq), TextItem(text, role, seq)])

    def ask(
        self,
        question: str,
        params: SamplingParams | None = None,
        *,
        request_id: str | None = None,
        seq: int | None = None,
    ) -> AnswerStream:
        """Queue a question after everything pushed so far; a running answer is cancelled.

        Errors after this point (a full queue, a question over the context budget, a model
        fault) end the returned stream with ``finish_reason=error`` and a code.
        """
        check_text(question, "question", max_chars=self.config.max_question_chars, empty_ok=False)
        params = params if params is not None else SamplingParams()
        if not isinstance(params, SamplingParams):
            raise InputError("params must be SamplingParams")
        record = self._record
        stream = AnswerStream(self.id, request_id, alive=self.engine.unavailable, on_cancel=self.engine.wake)
        with record.lock:
            self._check_open()
            trial = record.timeline.clone()
            items = [*trial.flush(seq), QuestionItem(question, params, stream, seq)]
            result = self.engine.offer(record, items)
            if result.status is PushStatus.REFUSED:
                stream.finish(FinishReason.ERROR, result.reason, result.code)
                return stream
            record.timeline = trial
            previous, record.answer = record.answer, stream
        record.touch()
        if previous is not None:
            previous.cancel()  # a newer question replaces the running answer
        return stream

    def cancel(self, request_id: str | None = None) -> None:
        """Stop the running answer (its tokens so far stay in the context)."""
        self._record.touch()
        self.engine.cancel_answer(self._record, request_id)

    def close(self) -> None:
        """End the session: answers end with ``closed``; its caches are freed by the engine."""
        self.engine.close_record(self._record)

    def pause_prefill(self) -> None:
        """Queue pushes without prefilling them until :meth:`resume_prefill` (bounded by the queue limits).

        For batch jobs that need reproducible prefill chunks (``summarize --resume`` is exact):
        everything queued while paused is prefilled from a fixed queue, whatever the timing.
        """
        self._record.inbox.paused = True

    def resume_prefill(self) -> None:
        self._record.inbox.paused = False
        self.engine.wake()

    # ---- reading -------------------------------------------------------------------------------
    def stats(self) -> SessionStats:
        """The session's figures now (also after it closed)."""
        r = self._record
        return SessionStats(
            session_id=r.id,
            context_tokens=r.context_tokens,
            evicted_tokens=r.evicted_tokens,
            evictions=r.evictions,
            queued_tokens=r.inbox.queued_tokens,
            queued_bytes=r.inbox.queued_bytes + r.timeline.held_bytes,
            dropped_frames=r.inbox.dropped_frames,
            frames=r.frames,
            audio_s=r.audio_s,
            last_consumed_seq=r.inbox.last_consumed_seq,
            kv_bytes_allocated=r.kv_bytes,
            closed=r.closed,
        )

    def next_event(self, timeout: float | None = 0.0) -> SessionEvent | None:
        """The oldest session event (errors outside answers), waiting up to ``timeout`` s."""
        return self._record.events.get(timeout)

    async def aevent(self) -> SessionEvent:
        """Await the next session event."""
        return await self._record.events.aget()

    @property
    def idle(self) -> bool:
        """Nothing queued and no answer running: everything queued so far is in the context (frames the
        timeline still holds for their audio are not queued yet; a question or the audio releases them)."""
        r = self._record
        return not r.inbox.pending and not r.answering and (r.answer is None or r.answer.finished)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until :attr:`idle`; False on timeout or if the engine is not serving.

        With no step thread running (caller-driven use) this steps the engine itself."""
        import time

        if not self.engine.running:
            self.engine.run_until_idle()
            return self.idle
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.idle:
            if self.engine.unavailable() is not None or (
                deadline is not None and time.monotonic() > deadline
            ):
                return False
            time.sleep(0.001)
        return True
