"""The live-session protocol core: one connection's state machine, with no sockets.

Every live endpoint (the WebSocket ``/v1/live``, the gRPC ``Live`` stream, later the OpenAI
Realtime endpoint) is a thin adapter that turns its wire format into the messages of
:mod:`streamer.serve.messages` and back, and drives a :class:`LiveProtocol`:

    hub = LiveHub(AsyncEngine(engine), ServeLimits())          # one per server (streamer.serve.hub)
    proto = hub.connect(peer="127.0.0.1:5000")                 # one per connection
    writer: while (msg := await proto.next_message()) is not None: send(encode(msg))
            then close the transport with proto.close_reason (None: the peer went away)
    reader: for each incoming message, in order:
                decode it → await proto.receive(message)
                or, if it cannot be decoded → proto.reject(ProtocolError(...))
            stop reading when proto.finished
    finally: await proto.connection_lost()                     # always, exactly once

Call order: ``receive`` is awaited for one message at a time (never concurrently); it does
the engine calls (which return at once: pushes only queue) after decoding pictures and PCM with
:mod:`streamer.serve.media` (large payloads in a worker thread, so the event loop never stalls)
and returns when the message has been handled. Everything the server says goes into the
connection's outbound queue, read with :meth:`LiveProtocol.next_message`; answers are pumped
from their :class:`~streamer.engine.collector.AnswerStream` into it by per-answer tasks, and a
ticker task sends ``stats`` and enforces the idle and duration limits. Outbound policy: see
:class:`~streamer.serve.limits.ServeLimits`.

States: ``AWAITING_SETUP`` → (setup) ``OPEN`` → (close, a fatal error, a limit, a drain)
``CLOSING`` (no more input; the queue drains, then ``next_message`` returns None) → ``CLOSED``
(:meth:`connection_lost`: answers cancelled, the session closed, the hub forgets it).

Errors: a message that cannot be understood or fails validation gets an ``error`` message
with a stable code and the connection stays open; only protocol violations (input before
``setup``, a second ``setup``), a refused setup for capacity, the limits, a client that does not
read, and internal faults end it (``fatal: true``). One connection's fault never reaches another.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any, cast

from streamer.engine.protocol import (
    AnswerEvent,
    ErrorCode,
    PushResult,
    PushStatus,
    SamplingParams,
    SessionConfig,
)
from streamer.errors import InputError, MediaError, ProtocolError, SessionError, StreamerError
from streamer.serve.media import LiveMedia
from streamer.serve.messages import (
    AnswerDelta,
    AnswerDone,
    AskMsg,
    Audio,
    CancelMsg,
    ClientMessage,
    CloseMsg,
    Error,
    Frame,
    GoAway,
    Ready,
    Sampling,
    ServerMessage,
    Setup,
    Stats,
    Text,
    WireCode,
)

if TYPE_CHECKING:
    from streamer.engine.aio import AsyncSession
    from streamer.engine.collector import AnswerStream
    from streamer.serve.hub import LiveHub

__all__ = ["CloseReason", "LiveProtocol", "LiveState"]

log = logging.getLogger("streamer.serve")

_TICK_S = 0.2  # seconds between limit checks
_END_WAIT_S = 1.0  # seconds an ending connection waits for its answers' last messages
_AUDIO_STALL_S = 2.0  # seconds without audio after which a live session's frames stop waiting for it


class LiveState(enum.IntEnum):
    AWAITING_SETUP = 0  # connected, no session yet
    OPEN = 1  # session open, input accepted
    CLOSING = 2  # no more input; the outbound queue drains, then the transport closes
    CLOSED = 3  # the transport is gone; nothing more is sent

    @property
    def is_finished(self) -> bool:
        return self >= LiveState.CLOSING


class CloseReason(str, enum.Enum):
    """Why the server ends a connection; adapters map it (WebSocket close code, gRPC status)."""

    NORMAL = "normal"  # the client closed the session (ws 1000, grpc OK)
    PROTOCOL_VIOLATION = "protocol_violation"  # (ws 1008, grpc INVALID_ARGUMENT / FAILED_PRECONDITION)
    POLICY = "policy"  # a limit: idle, duration, slow consumer (ws 1008, grpc RESOURCE_EXHAUSTED)
    TRY_AGAIN = "try_again"  # no capacity for a session now (ws 1013, grpc RESOURCE_EXHAUSTED)
    GOING_AWAY = "going_away"  # the server drains (ws 1001, grpc UNAVAILABLE)
    INTERNAL = "internal"  # a bug, contained to this connection (ws 1011, grpc INTERNAL)


class LiveProtocol:
    """One connection's live session. See the module docstring for the call order."""

    def __init__(self, hub: LiveHub, peer: str = "", audio_in_bursts: bool = False):
        self.hub = hub
        self.limits = hub.limits
        self.peer = peer
        # seconds without audio after which frames stop waiting for it; never when the adapter sends
        # audio in bursts (the Realtime buffer at each commit): a pause there is not the audio stopping
        self._audio_stall_s = None if audio_in_bursts else _AUDIO_STALL_S
        self.state = LiveState.AWAITING_SETUP
        self.close_reason: CloseReason | None = None  # set when the server ends the connection
        self.session: AsyncSession | None = None
        self.skipped_frames = 0  # pictures the fps policy did not take
        self._clock = hub.clock
        self._opened_at = self._last_input_at = self._next_stats_at = self._clock()
        self._last_seq: int | None = None
        self._out: deque[ServerMessage] = deque()
        self._out_ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._ended = False  # the last message is queued
        self._reserved = False
        self._going_away = False
        self._go_away_sent = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._answers: dict[str, asyncio.Task[Any]] = {}
        self._defaults = Sampling()
        self._media: LiveMedia | None = None

    # ---- state ---------------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        """No more input is read (the adapter stops reading)."""
        return self.state.is_finished

    @property
    def holds_session(self) -> bool:
        return self._reserved and self.state is not LiveState.CLOSED

    @property
    def outbound_queued(self) -> int:
        """Server messages waiting to be sent."""
        return len(self._out)

    @property
    def answering(self) -> bool:
        return any(not t.done() for t in self._answers.values())

    # ---- input ---------------------------------------------------------------------------------
    async def receive(self, message: ClientMessage) -> None:
        """Handle one client message (errors become ``error`` messages; nothing is raised)."""
        if self.state.is_finished:
            return
        self._last_input_at = self._clock()
        seq = message.seq
        try:
            if seq is None:
                seq = message.seq = 0 if self._last_seq is None else min(self._last_seq + 1, 2**32 - 1)
            elif self._last_seq is not None and seq <= self._last_seq:
                raise ProtocolError(
                    f"seq {seq} does not follow the previous {self._last_seq}; message ignored",
                    WireCode.BAD_SEQ.value,
                    seq,
                )
            self._last_seq = seq
            if isinstance(message, Setup):
                await self._setup(message)
                return
            if self.state is LiveState.AWAITING_SETUP:
                await self._violation(f"the first message must be setup, got {message.TYPE}", seq)
                return
            await self._dispatch(message)
        except StreamerError as exc:
            self._error(exc, seq)
        except Exception as exc:  # a bug: contained to this connection
            log.exception("live connection %s: internal error handling %s", self.peer, type(message).__name__)
            await self._end(
                CloseReason.INTERNAL,
                Error(ErrorCode.INTERNAL.value, f"internal error: {exc!r}", seq, fatal=True),
            )

    def reject(self, error: ProtocolError) -> None:
        """A message the adapter could not decode: an ``error`` message (the connection stays)."""
        if self.state.is_finished:
            return
        self._last_input_at = self._clock()
        self._error(error, error.seq)

    def touch(self) -> None:
        """Client activity that is not a live message (an adapter buffering input) resets the idle clock."""
        self._last_input_at = self._clock()

    async def _dispatch(self, message: ClientMessage) -> None:
        if isinstance(message, Frame):
            await self._frame(message)
        elif isinstance(message, Audio):
            await self._audio_chunk(message)
        elif isinstance(message, Text):
            await self._text(message)
        elif isinstance(message, AskMsg):
            await self._ask(message)
        elif isinstance(message, CancelMsg):
            await self._session().cancel(message.request_id)
        elif isinstance(message, CloseMsg):
            await self._end(CloseReason.NORMAL, None)
        else:
            raise ProtocolError(f"unknown message {type(message).__name__}", WireCode.BAD_MESSAGE.value)

    async def _setup(self, msg: Setup) -> None:
        if self.state is not LiveState.AWAITING_SETUP:
            await self._violation("setup was already received on this connection", msg.seq)
            return
        refusal = self.hub.admit()
        if refusal is not None:
            refusal.seq = msg.seq
            await self._end(CloseReason.TRY_AGAIN, refusal)
            return
        lim = self.limits
        config = self._session_config(msg)
        fps = 1.0 if msg.fps is None else msg.fps
        if not 0 < fps <= lim.max_fps:
            raise InputError(f"fps must be in (0, {lim.max_fps:g}], got {fps:g}")
        self._defaults = msg.sampling or Sampling()
        self._params(AskMsg(question="-"))  # refuse bad sampling defaults now
        self._reserved = True  # counted before any await: admission is atomic on the event loop
        try:
            self.session = await self.hub.engine.open_session(config)
        except SessionError as exc:
            self._reserved = False
            error = Error(_code_of(exc), str(exc), msg.seq, fatal=True)
            await self._end(CloseReason.TRY_AGAIN, error)
            return
        except BaseException:
            self._reserved = False
            raise
        self._media = LiveMedia(lim, fps, self._clock)
        self.state = LiveState.OPEN
        self._opened_at = self._clock()
        self._next_stats_at = self._opened_at + lim.stats_interval_s
        resolved = self.session.session.config.max_context_tokens or 0
        self._emit(Ready(self.session.id, resolved, lim.public(), msg.seq))
        self._spawn(self._ticker())
        self._spawn(self._watch_events())

    def check_setup(self, msg: Setup) -> SessionConfig:
        """The engine session config ``msg`` asks for, checked against this server's limits and by the
        engine as opening it would check it (InputError; ``field`` names the setting where one is at
        fault). Opens nothing: for a client that sends its settings before the session opens."""
        return self.hub.engine.resolve_config(self._session_config(msg))

    def _session_config(self, msg: Setup) -> SessionConfig:
        lim = self.limits
        if msg.system_prompt is not None and len(msg.system_prompt) > lim.max_text_chars:
            raise InputError(
                f"system_prompt is longer than {lim.max_text_chars} characters", field="system_prompt"
            )
        if msg.max_context_tokens is not None and lim.max_context_tokens is not None:
            if msg.max_context_tokens > lim.max_context_tokens:
                raise InputError(
                    f"max_context_tokens is over this server's limit of {lim.max_context_tokens}",
                    field="max_context_tokens",
                )
        given = {
            k: getattr(msg, k)
            for k in ("evict_to_fraction", "frame_soft_tokens", "audio_segment_s")
            if getattr(msg, k) is not None
        }
        return SessionConfig(
            system_prompt=msg.system_prompt,
            max_context_tokens=msg.max_context_tokens or lim.max_context_tokens,
            max_pending_tokens=lim.max_pending_tokens,
            max_pending_bytes=lim.max_pending_bytes,
            max_question_chars=lim.max_question_chars,
            idle_timeout_s=lim.idle_timeout_s + 60.0,  # the connection's own check comes first
            audio_stall_s=self._audio_stall_s,
            **given,
        )

    async def _frame(self, msg: Frame) -> None:
        started = time.perf_counter()
        assert self._media is not None
        frame = await self._media.frame(msg)
        if frame is None:
            self.skipped_frames += 1
            self.hub.observer.frame_skipped()
        else:
            result = await self._session().push_frame(frame.image, frame.t_s, seq=msg.seq)
            self._check_push(result, msg.seq)
        self.hub.observer.ingest_done("frame", time.perf_counter() - started)

    async def _audio_chunk(self, msg: Audio) -> None:
        started = time.perf_counter()
        assert self._media is not None
        blocks = await self._media.audio(msg)
        session = self._session()
        for block in blocks:
            result = await session.push_audio(block.waveform(), block.t_s, seq=msg.seq)
            if not self._check_push(result, msg.seq):
                break
        self.hub.observer.ingest_done("audio", time.perf_counter() - started)

    async def _text(self, msg: Text) -> None:
        if len(msg.text) > self.limits.max_text_chars:
            raise InputError(f"text is longer than {self.limits.max_text_chars} characters")
        result = await self._session().push_text(msg.text, msg.role, seq=msg.seq)
        self._check_push(result, msg.seq)

    async def _ask(self, msg: AskMsg) -> None:
        if self._going_away:
            self._emit(
                Error(WireCode.GOING_AWAY.value, "the server is shutting down; no new questions", msg.seq)
            )
            return
        if msg.request_id is not None and not 0 < len(msg.request_id) <= 128:
            raise InputError("request_id must be 1-128 characters")
        params = self._params(msg)
        received_at = time.perf_counter()
        stream = self._session().ask(msg.question, params, request_id=msg.request_id, seq=msg.seq)
        self._answers[stream.request_id] = self._spawn(self._pump(stream, msg.seq, received_at))

    def _params(self, msg: AskMsg) -> SamplingParams:
        over, base = msg.sampling or Sampling(), self._defaults

        def pick(name: str, default: Any) -> Any:
            for value in (getattr(over, name), getattr(base, name)):
                if value is not None:
                    return value
            return default

        max_new = pick("max_new_tokens", min(256, self.limits.max_new_tokens))
        if isinstance(max_new, int) and max_new > self.limits.max_new_tokens:
            raise InputError(f"max_new_tokens is over this server's limit of {self.limits.max_new_tokens}")
        return SamplingParams(
            max_new_tokens=max_new,
            temperature=pick("temperature", 0.0),
            top_k=pick("top_k", 0),
            top_p=pick("top_p", 1.0),
            seed=pick("seed", None),
            choices=msg.choices,
        )

    def _check_push(self, result: PushResult, seq: int | None) -> bool:
        if result.status is PushStatus.REFUSED:
            code = (result.code or ErrorCode.QUEUE_FULL).value
            self._emit(Error(code, result.reason or "the session's input queue is full", seq))
            return False
        return True

    def _session(self) -> AsyncSession:
        if self.session is None:
            raise SessionError("no session is open on this connection")
        return self.session

    # ---- answers -------------------------------------------------------------------------------
    async def _pump(self, stream: AnswerStream, seq: int | None, received_at: float) -> None:
        """Answer events → answer_delta messages (waiting for room; the stream merges meanwhile) → answer_done."""
        try:
            events_gen = cast(AsyncGenerator[AnswerEvent, None], stream.__aiter__())  # an async generator
            async with contextlib.aclosing(events_gen) as events:
                async for event in events:
                    if event.text or event.token_ids:
                        await self._wait_room()
                        self._emit(AnswerDelta(stream.request_id, event.text, list(event.token_ids)))
            answer = stream.result(0)
            done = AnswerDone(
                request_id=stream.request_id,
                finish_reason=answer.finish_reason.value,
                ttft_s=answer.ttft_s,
                tokens=len(answer.token_ids),
                latency_s=time.perf_counter() - received_at,
                error_code=None if answer.code is None else answer.code.value,
                error_message=answer.error,
                seq=seq,
            )
            self._emit(done)
            self.hub.observer.answer_done(done)
            self._emit_stats()
        finally:
            if self._answers.get(stream.request_id) is asyncio.current_task():
                del self._answers[stream.request_id]

    async def _wait_room(self) -> None:
        while len(self._out) >= self.limits.max_outbound_messages and self.state is not LiveState.CLOSED:
            self._room.clear()
            await self._room.wait()

    # ---- output --------------------------------------------------------------------------------
    async def next_message(self) -> ServerMessage | None:
        """The next message to send; None when the connection should be closed (see close_reason)."""
        while not self._out:
            if self.state is LiveState.CLOSED or self._ended:
                return None
            self._out_ready.clear()
            await self._out_ready.wait()
        message = self._out.popleft()
        if len(self._out) < self.limits.max_outbound_messages:
            self._room.set()
        return message

    def pending(self) -> list[ServerMessage]:
        """Take every queued message now, without waiting (for tests and polling adapters)."""
        out = list(self._out)
        self._out.clear()
        self._room.set()
        return out

    def _emit(self, message: ServerMessage) -> None:
        if self.state is LiveState.CLOSED or self._ended:
            return
        if isinstance(message, Stats):
            for i, queued in enumerate(self._out):
                if isinstance(queued, Stats):
                    del self._out[i]  # a newer stats replaces the unsent one
                    break
        if isinstance(message, Error):
            self.hub.observer.error_sent(message.code)
        self._out.append(message)
        self._out_ready.set()
        if len(self._out) >= 2 * self.limits.max_outbound_messages:
            self._out.clear()
            self._out.append(
                Error(WireCode.SLOW_CONSUMER.value, "the client does not read its messages", fatal=True)
            )
            self.hub.observer.error_sent(WireCode.SLOW_CONSUMER.value)
            self._ended = True
            self._room.set()
            self._spawn(self._end(CloseReason.POLICY, None))

    def _error(self, exc: StreamerError, seq: int | None) -> None:
        self._emit(Error(_code_of(exc), str(exc), seq))

    def _emit_stats(self) -> None:
        if self.session is None:
            return
        s = self.session.stats()
        self._emit(
            Stats(
                session_id=s.session_id,
                t_s=round(self._clock() - self._opened_at, 3),
                context_tokens=s.context_tokens,
                max_context_tokens=self.session.session.config.max_context_tokens or 0,
                evicted_tokens=s.evicted_tokens,
                evictions=s.evictions,
                queued_tokens=s.queued_tokens,
                queued_bytes=s.queued_bytes,
                dropped_frames=s.dropped_frames,
                skipped_frames=self.skipped_frames,
                frames=s.frames,
                audio_s=round(s.audio_s, 3),
                last_consumed_seq=s.last_consumed_seq,
                last_received_seq=self._last_seq,
                outbound_queued=len(self._out),
            )
        )

    # ---- time ----------------------------------------------------------------------------------
    async def tick(self) -> None:
        """Enforce the idle and duration limits, notice a session the engine closed, send stats."""
        if self.state is not LiveState.OPEN:
            return
        lim, now = self.limits, self._clock()
        session = self.session
        if session is not None and session.closed:
            await self._end(
                CloseReason.NORMAL,
                Error(ErrorCode.SESSION_CLOSED.value, "the session was closed", fatal=True),
            )
            return
        if now - self._last_input_at > lim.idle_timeout_s:
            message = f"no message for {lim.idle_timeout_s:g} s"
            await self._end(CloseReason.POLICY, Error(ErrorCode.IDLE_TIMEOUT.value, message, fatal=True))
            return
        age = now - self._opened_at
        if age >= lim.max_session_s:
            message = f"the session reached its limit of {lim.max_session_s:g} s"
            await self._end(CloseReason.POLICY, Error(WireCode.SESSION_EXPIRED.value, message, fatal=True))
            return
        if not self._go_away_sent and age >= lim.max_session_s - lim.go_away_notice_s:
            self._go_away_sent = True
            self._emit(GoAway(round(lim.max_session_s - age, 3), "session duration limit"))
        if lim.stats_interval_s and now >= self._next_stats_at:
            self._next_stats_at = now + lim.stats_interval_s
            self._emit_stats()

    async def _ticker(self) -> None:
        period = min(_TICK_S, self.limits.stats_interval_s or _TICK_S)
        while self.state is LiveState.OPEN:
            await asyncio.sleep(period)
            await self.tick()

    async def _watch_events(self) -> None:
        session = self._session()
        while self.state is LiveState.OPEN:
            event = await session.next_event()
            self._emit(Error(event.code.value, event.message, event.seq))
            if event.code in (ErrorCode.IDLE_TIMEOUT, ErrorCode.UNAVAILABLE) or session.closed:
                await self._end(CloseReason.POLICY, None)

    # ---- ending --------------------------------------------------------------------------------
    def go_away(self, seconds_left: float, reason: str) -> None:
        """Warn the client that the server ends this session in ``seconds_left`` (no new questions)."""
        if self.state.is_finished:
            return
        self._going_away = True
        self._emit(GoAway(seconds_left, reason))

    async def shutdown(self, reason: str) -> None:
        """End the session now (the server drains): answers cancelled, a fatal ``going_away`` error."""
        await self._end(CloseReason.GOING_AWAY, Error(WireCode.GOING_AWAY.value, reason, fatal=True))

    async def _violation(self, message: str, seq: int | None) -> None:
        await self._end(
            CloseReason.PROTOCOL_VIOLATION, Error(WireCode.PROTOCOL_VIOLATION.value, message, seq, fatal=True)
        )

    async def _end(self, reason: CloseReason, error: Error | None) -> None:
        """Stop reading, close the session, queue the answers' ends, final stats and ``error``."""
        if self.state is LiveState.CLOSED:
            return
        already = self.state is LiveState.CLOSING
        self.state = LiveState.CLOSING
        if self.close_reason is None:
            self.close_reason = reason
        if already:
            return
        me = asyncio.current_task()
        for task in self._tasks:
            if task is not me and task not in self._answers.values():
                task.cancel()  # ticker, event watcher
        await self._close_session()
        answers = [t for t in self._answers.values() if t is not me]
        if answers:
            _, late = await asyncio.wait(answers, timeout=_END_WAIT_S)
            for task in late:
                task.cancel()
        self._emit_stats()
        if error is not None:
            self._emit(error)
        self._ended = True
        self._out_ready.set()

    async def _close_session(self) -> None:
        session = self.session
        if session is not None and not session.closed:
            try:
                await session.cancel()
                await session.close()
            except StreamerError:
                pass  # already gone: nothing to free

    async def connection_lost(self) -> None:
        """The transport is gone (or done): cancel answers, close the session. Call exactly once."""
        if self.state is LiveState.CLOSED:
            return
        self.state = LiveState.CLOSED
        me = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not me]
        for task in tasks:
            task.cancel()
        self._room.set()
        self._out_ready.set()
        await self._close_session()
        if tasks:
            await asyncio.wait(tasks, timeout=_END_WAIT_S)
        self._reserved = False
        self.hub.forget(self)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:  # a bug in a background task: contained to this connection
            log.error("live connection %s: background task failed", self.peer, exc_info=exc)
            self._emit(Error(ErrorCode.INTERNAL.value, f"internal error: {exc!r}", fatal=True))
            self._spawn(self._end(CloseReason.INTERNAL, None))


def _code_of(exc: BaseException) -> str:
    """The stable wire code of a streamer error."""
    if isinstance(exc, ProtocolError):
        return exc.code
    code = getattr(exc, "code", None)  # SessionErrors made by the engine carry their ErrorCode
    if isinstance(code, enum.Enum):
        return str(code.value)
    if isinstance(exc, MediaError):
        return WireCode.UNSUPPORTED_MEDIA.value
    if isinstance(exc, SessionError):
        return ErrorCode.SESSION_CLOSED.value
    return ErrorCode.INVALID_INPUT.value


def __getattr__(name: str) -> Any:  # LiveHub and LiveObserver lived here in the first commit
    if name in ("LiveHub", "LiveObserver"):
        from streamer.serve import hub

        return getattr(hub, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
