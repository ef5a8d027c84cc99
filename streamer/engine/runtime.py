"""The engine loop: sessions, commands and a supervised step thread around a model core.

    front end (any thread, asyncio)          step thread (owns all model state)
    ─────────────────────────────────        ───────────────────────────────────
    open_session / close / cancel  ──cmd──▶  drain commands
    push_* / ask  ──▶ Timeline ──▶ Inbox ──▶ core.step(): prefill, batched decode, sample
    AnswerStream / session events  ◀──────── put / finish (never blocks)

Callers never wait on model work: pushes only order and queue (a per-session lock held for
list work), commands go through a queue, answers come back through per-request collectors.
The loop is supervised: an exception escaping a step fails the answers in flight with an
error and the engine keeps serving; repeated failures, a dead thread or a step that runs past
``step_timeout_s`` mark it unhealthy (:meth:`EngineLoop.health`), and every waiting stream
then ends with ``unavailable`` instead of waiting forever. :class:`~streamer.engine.fake.FakeEngine`
and :class:`~streamer.engine.engine.Engine` are this loop around a scripted and a real core.
"""

from __future__ import annotations

import atexit
import queue
import threading
import time
import traceback
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from streamer.engine.collector import AnswerStream
from streamer.engine.events import EventQueue
from streamer.engine.inbox import Inbox
from streamer.engine.protocol import (
    Ask,
    Cancel,
    CloseSession,
    Command,
    ErrorCode,
    FinishReason,
    Health,
    OpenSession,
    PushAudio,
    PushFrame,
    PushResult,
    PushStatus,
    PushText,
    SessionConfig,
    SessionEvent,
    new_session_id,
)
from streamer.engine.timeline import Item, QuestionItem, Timeline
from streamer.errors import InputError, SessionError, StreamerError

__all__ = ["Core", "EngineConfig", "EngineLoop", "EngineMetrics", "SessionRecord", "session_error"]

_ENGINES: weakref.WeakSet[EngineLoop] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:  # a process that exits without stop() must not kill a thread mid-forward
    for engine in list(_ENGINES):
        engine.stop()


def session_error(message: str, code: ErrorCode) -> SessionError:
    """A SessionError that carries its stable code (read back with ``error_code``)."""
    exc = SessionError(message)
    exc.code = code  # type: ignore[attr-defined]
    return exc


@dataclass
class EngineConfig:
    max_sessions: int = 64  # open sessions at once
    kv_bytes_per_session: int = 1 << 30  # the default context budget's memory target, bytes
    idle_timeout_s: float = 1800.0  # a session without any command for this long is closed
    step_timeout_s: float = 300.0  # a single step running longer marks the engine unhealthy
    max_consecutive_step_errors: int = 3  # then the engine is unhealthy (a fatal condition)
    scheduler: Any = None  # SchedulerConfig for the model core (None: its defaults)


@dataclass
class EngineMetrics:
    """Counters since start (written by the step thread; read anywhere)."""

    prefill_tokens: int = 0  # tokens prefilled
    generated_tokens: int = 0  # tokens sampled
    answers: int = 0  # answers finished
    answer_errors: int = 0  # answers finished with an error
    evicted_tokens: int = 0  # tokens evicted, all sessions
    sessions_opened: int = 0
    sessions_closed: int = 0
    dropped_frames_closed: int = 0  # frames dropped by sessions already closed


@dataclass
class SessionRecord:
    """One session as the loop and the core share it (figures are written by the step thread only)."""

    id: str
    config: SessionConfig
    inbox: Inbox
    timeline: Timeline
    t0: float = field(default_factory=time.monotonic)  # session clock origin (monotonic seconds)
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards the timeline and answer
    events: EventQueue = field(default_factory=EventQueue)
    answer: AnswerStream | None = None  # the latest question's stream
    closed: bool = False
    last_active: float = field(default_factory=time.monotonic)
    answering: bool = False  # a decode is running (step thread)
    context_tokens: int = 0
    evicted_tokens: int = 0
    evictions: int = 0
    kv_bytes: int = 0
    frames: int = 0  # frames prefilled
    audio_s: float = 0.0  # seconds of audio prefilled

    def touch(self) -> None:
        self.last_active = time.monotonic()

    def report(self, code: ErrorCode, message: str, seq: int | None = None) -> None:
        self.events.put(SessionEvent(self.id, code, message, seq))


class Core(Protocol):
    """What the loop needs of a model: all methods but ``resolve`` and ``estimate`` run on the step thread."""

    def resolve(self, config: SessionConfig) -> SessionConfig: ...  # fill defaults, check against the model

    def estimate(self, config: SessionConfig) -> Callable[[Item], int]: ...  # tokens an item will take

    def open(self, record: SessionRecord) -> None: ...

    def close(self, record: SessionRecord) -> None: ...  # free its state (answers were ended by the loop)

    def step(self, records: list[SessionRecord]) -> bool: ...  # False when there was nothing to do

    def fail(self, records: list[SessionRecord], message: str) -> None: ...  # end answers after a failed step


class EngineLoop:
    """Sessions + a supervised step thread around a :class:`Core`. Thread-safe; never blocks callers."""

    def __init__(self, core: Core, config: EngineConfig | None = None, metrics: EngineMetrics | None = None):
        self.core = core
        self.config = config or EngineConfig()
        self.metrics = metrics or EngineMetrics()
        self._sessions: dict[str, SessionRecord] = {}
        self._registry_lock = threading.Lock()  # the session dict only
        self._commands: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any] | None]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = False
        self._status = "ok"  # Health.status: "ok", "stopped" or "unhealthy"
        self._reason: str | None = None  # why, when not ok
        self._steps = 0
        self._step_errors = 0
        self._consecutive_errors = 0
        self._step_started: float | None = None
        self._last_beat = time.monotonic()
        self._next_idle_check = 0.0
        self._next_stall_check = 0.0
        _ENGINES.add(self)

    # ---- sessions ------------------------------------------------------------------------------
    def open_session(self, config: SessionConfig | None = None, session_id: str | None = None):  # noqa: ANN201
        """A new :class:`~streamer.engine.session.Session` (returns at once; the engine sets it up)."""
        from streamer.engine.session import Session

        self._check_serving()
        resolved = self.resolve_config(config or SessionConfig())
        sid = session_id or new_session_id()
        record = SessionRecord(
            sid,
            resolved,
            Inbox(resolved.max_pending_tokens, resolved.max_pending_bytes, self.core.estimate(resolved)),
            Timeline(
                resolved.audio_segment_s, resolved.max_held_frames, audio_stall_s=resolved.audio_stall_s
            ),
        )
        record.timeline.clock = lambda: time.monotonic() - record.t0
        with self._registry_lock:
            if sid in self._sessions:
                raise InputError(f"session id {sid!r} is already in use")
            if len(self._sessions) >= self.config.max_sessions:
                raise session_error(
                    f"the engine already serves its maximum of {self.config.max_sessions} sessions",
                    ErrorCode.SESSION_LIMIT,
                )
            self._sessions[sid] = record
        self.metrics.sessions_opened += 1
        self._post(lambda: self.core.open(record))
        return Session(self, record)

    def resolve_config(self, config: SessionConfig) -> SessionConfig:
        """``config`` as :meth:`open_session` would take it: defaults filled, checked against the model
        (InputError, with ``field`` set where one setting is refused). Opens nothing; any thread."""
        if not isinstance(config, SessionConfig):
            raise InputError("config must be a SessionConfig")
        return self.core.resolve(config)

    def get_session(self, session_id: str):  # noqa: ANN201
        """The open session with this id (SessionError if there is none)."""
        from streamer.engine.session import Session

        record = self._sessions.get(session_id)
        if record is None or record.closed:
            raise session_error(f"no open session {session_id!r}", ErrorCode.SESSION_CLOSED)
        return Session(self, record)

    @property
    def num_sessions(self) -> int:
        return len(self._sessions)

    def session_ids(self) -> list[str]:
        return list(self._sessions)

    def submit(self, command: Command) -> Any:
        """Run one protocol command; returns what the matching method returns."""
        if isinstance(command, OpenSession):
            return self.open_session(command.config, command.session_id)
        session = self.get_session(command.session_id)
        if isinstance(command, PushFrame):
            return session.push_frame(command.image, command.t_s, seq=command.seq)
        if isinstance(command, PushAudio):
            return session.push_audio(command.samples, command.t_s, seq=command.seq)
        if isinstance(command, PushText):
            return session.push_text(command.text, command.role, seq=command.seq)
        if isinstance(command, Ask):
            return session.ask(
                command.question, command.params, request_id=command.request_id, seq=command.seq
            )
        if isinstance(command, Cancel):
            return session.cancel(command.request_id)
        if isinstance(command, CloseSession):
            return session.close()
        raise InputError(f"unknown command {type(command).__name__}")

    # ---- used by Session (the front object) ----------------------------------------------------
    def offer(self, record: SessionRecord, items: list[Item], pushed: Any = None) -> PushResult:
        result = record.inbox.offer(items, pushed)
        if items:
            self._wake.set()
        return result

    def close_record(
        self,
        record: SessionRecord,
        reason: FinishReason = FinishReason.CLOSED,
        message: str | None = None,
    ) -> None:
        """End a session now: its answers end at once; the step thread frees its caches."""
        with record.lock:
            if record.closed:
                return
            record.closed = True
            answer = record.answer
        code = ErrorCode.UNAVAILABLE if reason is FinishReason.ERROR else None
        if answer is not None:
            answer.finish(reason, message, code)
        for item in record.inbox.clear():
            if isinstance(item, QuestionItem) and item.stream is not None:
                item.stream.finish(reason, message, code)
        with self._registry_lock:
            self._sessions.pop(record.id, None)
        self.metrics.sessions_closed += 1
        self.metrics.dropped_frames_closed += record.inbox.dropped_frames
        self._post(lambda: self.core.close(record))

    def cancel_answer(self, record: SessionRecord, request_id: str | None) -> None:
        answer = record.answer
        if answer is not None and (request_id is None or answer.request_id == request_id):
            answer.cancel()

    def unavailable(self) -> str | None:
        """None while the engine serves; otherwise why not (read by waiting streams)."""
        health = self.health()
        if health.status in ("ok", "starting"):
            return None
        return f"the engine is {health.status}" + (f": {health.reason}" if health.reason else "")

    def wake(self) -> None:
        self._wake.set()

    @property
    def running(self) -> bool:
        """A step thread is serving (else the caller drives the engine with step / run_until_idle)."""
        return self._thread is not None

    def _check_serving(self) -> None:
        why = self.unavailable()
        if why is not None:
            raise session_error(why, ErrorCode.UNAVAILABLE)

    # ---- running -------------------------------------------------------------------------------
    def _post(self, fn: Callable[[], Any], future: Future[Any] | None = None) -> None:
        self._commands.put((fn, future))
        self._wake.set()

    def call(self, fn: Callable[[], Any], timeout: float | None = 60.0) -> Any:
        """Run ``fn`` on the step thread (inline when no thread runs) and return its result."""
        if self._thread is None:
            self._drain_commands()
            return fn()
        future: Future[Any] = Future()
        self._post(fn, future)
        try:
            return future.result(timeout)
        except TimeoutError:
            raise session_error("the engine did not answer in time", ErrorCode.UNAVAILABLE) from None

    def _drain_commands(self) -> None:
        while True:
            try:
                fn, future = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                result = fn()
            except BaseException as exc:  # reported to the caller; a bare command must not kill the loop
                if future is not None:
                    future.set_exception(exc)
                elif not isinstance(exc, StreamerError):
                    traceback.print_exc()
            else:
                if future is not None:
                    future.set_result(result)

    def step(self) -> bool:
        """Commands, then one core step; False when there was nothing to do (caller-driven use)."""
        self._drain_commands()
        records = [r for r in list(self._sessions.values()) if not r.closed]
        self._step_started = time.monotonic()
        try:
            did = self.core.step(records)
            self._consecutive_errors = 0
        except Exception as exc:  # a bug in a step: contain it, fail what was in flight, keep serving
            traceback.print_exc()
            self._step_errors += 1
            self._consecutive_errors += 1
            self.core.fail(records, f"internal error: {exc!r}")
            if self._consecutive_errors >= self.config.max_consecutive_step_errors:
                self._mark_unhealthy(f"{self._consecutive_errors} steps failed in a row (last: {exc!r})")
            did = True
        finally:
            self._step_started = None
            self._steps += 1
            self._last_beat = time.monotonic()
        self._expire_idle()
        self._release_stalled_frames()
        return did

    def run_until_idle(self) -> None:
        """Step on the caller's thread until there is nothing left to do (no step thread running)."""
        if self._thread is not None:
            raise SessionError("the engine runs its own step thread; wait on answers instead")
        while self.step():
            pass
        self._drain_commands()

    def start(self) -> None:
        """Step in a background thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._running = True
        self._status, self._reason = "ok", None
        self._thread = threading.Thread(target=self._loop, name="streamer-engine", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        try:
            while self._running:
                if not self.step():
                    self._wake.wait(0.05)
                    self._wake.clear()
                    self._last_beat = time.monotonic()
        except BaseException as exc:  # the thread must never die silently
            self._mark_unhealthy(f"the step thread died: {exc!r}")
            raise

    def stop(self, grace_s: float = 0.0) -> None:
        """Stop serving: answers still running after ``grace_s`` end with ``closed``; idempotent."""
        if self._status == "stopped":
            return
        deadline = time.monotonic() + grace_s
        while (
            grace_s > 0 and time.monotonic() < deadline and any(r.answering for r in self._sessions.values())
        ):
            time.sleep(0.01)
        self._status, self._reason = "stopped", "the engine was stopped"
        self._running = False
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=max(self.config.step_timeout_s, 1.0))
        self._thread = None
        for record in list(self._sessions.values()):
            self.close_record(record, FinishReason.CLOSED, "the engine stopped")
        self._drain_commands()

    def __enter__(self) -> EngineLoop:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- health --------------------------------------------------------------------------------
    def _mark_unhealthy(self, reason: str) -> None:
        if self._status == "unhealthy":
            return
        self._status, self._reason = "unhealthy", reason
        records = list(self._sessions.values())
        for record in records:  # every waiting stream ends now, with the reason
            answer = record.answer
            if answer is not None:
                answer.finish(FinishReason.ERROR, f"the engine is unhealthy: {reason}", ErrorCode.UNAVAILABLE)
            record.report(ErrorCode.UNAVAILABLE, f"the engine is unhealthy: {reason}")

    def health(self) -> Health:
        now = time.monotonic()
        status, reason = self._status, self._reason
        started = self._step_started
        if status == "ok" and self._thread is not None and not self._thread.is_alive():
            status, reason = "unhealthy", "the step thread is not running"
        if status == "ok" and started is not None and now - started > self.config.step_timeout_s:
            status, reason = "unhealthy", f"a step has been running for {now - started:.0f} s"
        age = None if self._thread is None else now - self._last_beat
        return Health(status, reason, len(self._sessions), self._steps, self._step_errors, age)

    def _release_stalled_frames(self) -> None:
        """Frames held for audio that stopped coming go in (:meth:`Timeline.release_stalled`)."""
        now = time.monotonic()
        if now < self._next_stall_check:
            return
        self._next_stall_check = now + 0.25
        for record in list(self._sessions.values()):
            if not (record.timeline.held and record.timeline.audio_stopped):  # read again under the lock
                continue
            with record.lock:  # as a push: try on a copy, keep it if the queue takes the frames
                if record.closed:
                    continue
                trial = record.timeline.clone()
                items = trial.release_stalled()
                if items and self.offer(record, items).status is not PushStatus.REFUSED:
                    record.timeline = trial

    def _expire_idle(self) -> None:
        now = time.monotonic()
        if now < self._next_idle_check:
            return
        self._next_idle_check = now + 1.0
        for record in list(self._sessions.values()):
            limit = record.config.idle_timeout_s or self.config.idle_timeout_s
            busy = (
                record.answering
                or len(record.inbox)
                or (record.answer is not None and not record.answer.finished)
            )
            if not busy and now - record.last_active > limit:
                record.report(ErrorCode.IDLE_TIMEOUT, f"session closed after {limit:g} s without input")
                self.close_record(record, FinishReason.CLOSED, "the session timed out")
