"""The OpenAI Realtime protocol core of ``/v1/realtime``: OpenAI events in and out, no sockets.

A :class:`RealtimeProtocol` translates one connection's GA Realtime events into the messages
of :mod:`streamer.serve.messages` and drives a :class:`~streamer.serve.live.LiveProtocol`
with them, the same core ``/v1/live`` and gRPC use: admission, limits, media decoding, idle and
duration limits, drain, metrics and answers are theirs. What it adds is OpenAI's model of a
conversation on top of streamer's one continuous session:

* the engine session opens lazily, at the first event that needs it (an item, a commit, a
  response, a frame), so the ``instructions`` of a ``session.update`` sent first become the
  session's system prompt (kept through eviction); later instructions enter as system turns;
  a ``session.update`` the engine would refuse at that first input (a context budget the model
  cannot hold) is refused itself, naming the field;
* input audio is buffered until ``input_audio_buffer.commit`` (``clear`` drops it) and then
  enters at the time its first chunk arrived; pictures (``input_image`` parts and
  ``streamer.input_frame.append``) enter as frames at their arrival time;
* the latest user text waits and is the question ``response.create`` asks (a newer user text
  or a system/assistant item first adds it as a plain user turn); with none, the session's
  ``streamer.default_question`` is asked;
* one response at a time, its answer streamed as ``response.output_text.delta`` events.

Call order (the adapter, :mod:`streamer.serve.realtime_ws`)::

    proto = RealtimeProtocol(hub, peer, model=query_model)
    await proto.start()                                  # session.created, or a refusal
    writer: while (ev := await proto.next_event()) is not None: send(jsonio.dumps(ev))
            then close the transport with proto.close_reason (None: the peer went away)
    reader: for each message: await proto.receive(text, data); stop when proto.finished
    finally: await proto.connection_lost()              # always, exactly once

``receive`` is awaited for one message at a time and never raises: a refused event gets an
``error`` event in OpenAI's shape (``type``, ``code``, ``message``, ``param``, ``event_id``)
and the connection stays open; only the live core's fatal errors, a client that does not
read, an idle connection and internal faults end it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from streamer import jsonio
from streamer.engine.protocol import ErrorCode
from streamer.errors import InputError, ProtocolError, StreamerError
from streamer.media.g711 import alaw_to_s16le, ulaw_to_s16le
from streamer.media.image import image_format
from streamer.media.types import SAMPLE_RATE
from streamer.serve.hub import LiveHub
from streamer.serve.live import CloseReason, LiveState
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
    to_dict,
)
from streamer.serve.realtime_buffers import InputAudioBuffer, Outbox
from streamer.serve.realtime_events import (
    UNSUPPORTED_EVENTS,
    AudioPart,
    ImagePart,
    OpenResponse,
    RealtimeError,
    ResponseParams,
    check_keys,
    decode_base64,
    decode_data_url,
    error_event,
    error_type_of,
    event,
    new_id,
    parse_item,
    parse_response_params,
    response_finished,
    response_started,
    response_status,
    user_audio_item,
)
from streamer.serve.realtime_session import SessionSettings, apply_session_update, session_object

__all__ = ["DEFAULT_MODEL", "RealtimeProtocol"]

log = logging.getLogger("streamer.serve")

DEFAULT_MODEL = "streamer"  # the model name shown when the client names none
_CHUNK_BYTES = 1 << 20  # committed audio goes to the live core in chunks of at most this many bytes
_ITEM_HISTORY = 256  # recent items kept for conversation.item.retrieve and previous_item_id
_FORWARDED_HISTORY = 4096  # forwarded messages remembered to map live errors back to client event ids
_TICK_S = 0.2  # seconds between idle checks before the engine session exists


# SessionConfig fields -> where a Realtime client sets them (errors name the latter)
_SETUP_PARAMS = {
    "system_prompt": "session.instructions",
    "max_context_tokens": "session.streamer.max_context_tokens",
    "evict_to_fraction": "session.truncation.retention_ratio",
    "frame_soft_tokens": "session.streamer.frame_soft_tokens",
    "audio_segment_s": "session.streamer.audio_segment_s",
}


def _setup_of(settings: SessionSettings) -> Setup:
    """The live core's setup message for the engine session these settings open."""
    o = settings.streamer
    return Setup(
        system_prompt=settings.instructions or None,
        max_context_tokens=o.max_context_tokens,
        evict_to_fraction=settings.retention_ratio,
        frame_soft_tokens=o.frame_soft_tokens,
        audio_segment_s=o.audio_segment_s,
        fps=o.fps,
    )


@dataclass
class _Forwarded:
    event_id: str | None  # the client event a live message came from
    kind: str  # its type


Handler = Callable[[dict[str, Any], str | None], Awaitable[None]]


class RealtimeProtocol:
    """One ``/v1/realtime`` connection over one LiveProtocol. See the module docstring for the call order."""

    def __init__(self, hub: LiveHub, peer: str = "", model: str | None = None):
        self.hub = hub
        self.limits = hub.limits
        self.live = hub.connect(peer, audio_in_bursts=True)  # committed audio arrives a turn at a time
        self.session_id = new_id("sess")
        self.settings = SessionSettings(model=model or DEFAULT_MODEL)
        self.close_reason: CloseReason | None = None  # set when the server ends the connection
        self._clock = hub.clock
        self._out = Outbox(self.limits.max_outbound_messages)
        self._lost = False
        self._opened = False  # the engine session exists
        self._t0 = 0.0  # hub clock at the engine session's start: session time 0
        self._last_input_at = self._clock()
        self._seq = 0
        self._forwarded: OrderedDict[int, _Forwarded] = OrderedDict()
        self._audio = InputAudioBuffer()  # uncommitted input audio (times on the hub clock)
        self._audio_end_s = 0.0  # session seconds where committed audio ends
        self._last_frame_s = -math.inf  # session seconds of the last picture sent
        self._held: str | None = None  # the latest user text, asked by the next response.create
        self._items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._last_item_id: str | None = None
        self._response: OpenResponse | None = None
        self._in_effect = ""  # the instructions the model has last been given
        self._engine_session_id: str | None = None
        self._budget: int | None = None  # tokens, the session's KV budget
        self._tasks: set[asyncio.Task[Any]] = set()
        self._handlers: dict[str, Handler] = {
            "session.update": self._session_update,
            "input_audio_buffer.append": self._audio_append,
            "input_audio_buffer.commit": self._audio_commit,
            "input_audio_buffer.clear": self._audio_clear,
            "conversation.item.create": self._item_create,
            "conversation.item.retrieve": self._item_retrieve,
            "conversation.item.delete": self._refuse_event,
            "conversation.item.truncate": self._refuse_event,
            "output_audio_buffer.clear": self._refuse_event,
            "response.create": self._response_create,
            "response.cancel": self._response_cancel,
            "streamer.input_frame.append": self._frame_append,
        }

    # ---- state ---------------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        """No more input is read (the adapter stops reading)."""
        return self._out.ended or self.live.finished

    @property
    def outbound_queued(self) -> int:
        return len(self._out)

    @property
    def held_question(self) -> str | None:
        """The user text the next ``response.create`` asks (None: the default question)."""
        return self._held

    @property
    def audio_buffered_bytes(self) -> int:
        return len(self._audio)

    async def start(self) -> None:
        """Say ``session.created`` (or refuse the connection when the server is full or draining)."""
        refusal = self.hub.admit()
        if refusal is not None:
            self._own_error(refusal.code, refusal.message)
            busy = refusal.code == ErrorCode.SESSION_LIMIT.value
            self._finish(CloseReason.TRY_AGAIN if busy else CloseReason.GOING_AWAY)
            return
        self._emit(event("session.created", session=self._session_object()))
        self._spawn(self._pump())
        self._spawn(self._watchdog())

    # ---- input ---------------------------------------------------------------------------------
    async def receive(self, text: str | None, data: bytes | None = None) -> None:
        """Handle one WebSocket message (JSON text); refusals become ``error`` events, nothing is raised."""
        if self.finished:
            return
        self._last_input_at = self._clock()
        self.live.touch()
        size = len(data) if data is not None else len(text.encode("utf-8")) if text is not None else 0
        event_id: str | None = None
        try:
            if size > self.limits.max_message_bytes:
                raise RealtimeError(
                    f"message of {size} bytes is over the limit of {self.limits.max_message_bytes}",
                    WireCode.MESSAGE_TOO_LARGE.value,
                )
            if data is not None or text is None:
                raise RealtimeError("binary messages are not part of the Realtime protocol: send JSON text")
            obj = _parse_json(text)
            event_id = obj.get("event_id") if isinstance(obj.get("event_id"), str) else None
            kind = obj.get("type")
            if not isinstance(kind, str):
                raise RealtimeError("an event needs a string 'type'", "missing_required_parameter", "type")
            handler = self._handlers.get(kind)
            if handler is None:
                raise RealtimeError(
                    f"Invalid value: '{kind[:64]}'. Supported values are: {', '.join(self._handlers)}.",
                    "invalid_value",
                    "type",
                )
            self.hub.observer.message_received(kind, size)
            await handler(obj, event_id)
        except RealtimeError as exc:
            self._own_error(exc.code, str(exc), exc.param, event_id, exc.error_type)
        except StreamerError as exc:
            code = exc.code if isinstance(exc, ProtocolError) else ErrorCode.INVALID_INPUT.value
            self._own_error(code, str(exc), None, event_id)
        except Exception as exc:  # a bug: contained to this connection
            log.exception("realtime connection %s: internal error", self.live.peer)
            self._own_error(ErrorCode.INTERNAL.value, f"internal error: {exc!r}", None, event_id)
            self._finish(CloseReason.INTERNAL)
            await self._close_live()

    async def _session_update(self, ev: dict[str, Any], event_id: str | None) -> None:
        check_keys(ev, ("type", "event_id", "session"), "")
        if "session" not in ev:
            raise RealtimeError(
                "Missing required parameter: 'session'.", "missing_required_parameter", "session"
            )
        new = apply_session_update(self.settings, ev["session"], self.limits, self._opened)
        if not self._opened and _setup_of(new) != _setup_of(self.settings):
            self._check_setup(_setup_of(new))  # what the first input would be refused for, refused now
        if new.input_format != self.settings.input_format and self._audio:
            raise RealtimeError(
                "the input audio format cannot change while the buffer holds audio: commit or clear it first",
                "invalid_value",
                "session.audio.input.format",
            )
        self.settings = new
        self._emit(event("session.updated", session=self._session_object()))

    async def _audio_append(self, ev: dict[str, Any], event_id: str | None) -> None:
        check_keys(ev, ("type", "event_id", "audio"), "")
        data = decode_base64(ev.get("audio"), "audio")
        max_s = self.limits.max_pending_bytes / (4 * SAMPLE_RATE) / 2  # half the media queue (16 kHz f32)
        self._audio.append(data, self.settings.input_format, max_s, self._clock())

    async def _audio_commit(self, ev: dict[str, Any], event_id: str | None) -> None:
        check_keys(ev, ("type", "event_id"), "")
        data, at = self._audio.take(self.settings.input_format)
        if not await self._ensure_open(event_id):
            return
        item = user_audio_item(new_id("item"))
        error = await self._push_audio(data, self._session_time(at), event_id, "input_audio_buffer.commit")
        if error is not None:
            self._refused(error, event_id)
            return
        committed = event(
            "input_audio_buffer.committed", previous_item_id=self._last_item_id, item_id=item["id"]
        )
        self._emit(committed)
        self._add_item(item)

    async def _audio_clear(self, ev: dict[str, Any], event_id: str | None) -> None:
        check_keys(ev, ("type", "event_id"), "")
        self._audio.clear()
        self._emit(event("input_audio_buffer.cleared"))

    async def _item_create(self, ev: dict[str, Any], event_id: str | None) -> None:
        check_keys(ev, ("type", "event_id", "previous_item_id", "item"), "")
        previous = ev.get("previous_item_id")
        if previous is not None and previous != self._last_item_id:
            raise RealtimeError(
                f"previous_item_id: items can only be appended after the last item ({self._last_item_id})",
                "unsupported_parameter",
                "previous_item_id",
            )
        item = parse_item(ev.get("item"), self.limits)
        if item.id in self._items:
            raise RealtimeError(f"item {item.id} already exists", "invalid_value", "item.id")
        if not await self._ensure_open(event_id):
            return
        text = item.text
        if item.role == "user":
            if text.strip() and not await self._flush_held(event_id):
                return
            for part in item.parts:
                if isinstance(part, ImagePart):
                    t = max(self._now_s(), self._last_frame_s + 1.0 / self.settings.streamer.fps + 1e-3)
                    error = await self._push_frame(part.format, part.data, t, event_id)
                elif isinstance(part, AudioPart):
                    error = await self._push_audio(
                        part.data, self._now_s(), event_id, "conversation.item.create"
                    )
                else:
                    continue
                if error is not None:
                    self._refused(error, event_id, part.param)
                    return
            if text.strip():
                if len(text) <= self.limits.max_question_chars:
                    self._held = text
                elif (
                    error := await self._forward(Text(text, "user"), event_id, "conversation.item.create")
                ) is not None:
                    self._refused(error, event_id, "item.content")
                    return
        else:
            if not await self._flush_held(event_id):
                return
            error = await self._forward(Text(text, item.role), event_id, "conversation.item.create")
            if error is not None:
                self._refused(error, event_id, "item.content")
                return
        self._add_item(item.public)

    async def _item_retrieve(self, ev: dict[str, Any], event_id: str | None) -> None:
        check_keys(ev, ("type", "event_id", "item_id"), "")
        item_id = ev.get("item_id")
        item = self._items.get(item_id) if isinstance(item_id, str) else None
        if item is None:
            raise RealtimeError(
                f"Error retrieving item: the item with id '{item_id}' does not exist (or is older than the last {_ITEM_HISTORY} items).",
                "item_not_found",
                "item_id",
            )
        self._emit(event("conversation.item.retrieved", item=item))

    async def _refuse_event(self, ev: dict[str, Any], event_id: str | None) -> None:
        kind = ev["type"]
        raise RealtimeError(
            f"{kind} is not supported: {UNSUPPORTED_EVENTS[kind]}", "unsupported_event", "type"
        )

    async def _frame_append(self, ev: dict[str, Any], event_id: str | None) -> None:
        check_keys(ev, ("type", "event_id", "image", "t_s"), "")
        image = ev.get("image")
        if isinstance(image, str) and image.startswith("data:"):
            fmt, data = decode_data_url(image, "image")
        else:
            data = decode_base64(image, "image")
            found = image_format(data)
            if found is None:
                raise RealtimeError("image must be JPEG, PNG or WebP bytes", "invalid_value", "image")
            fmt = found
        t_s = ev.get("t_s")
        if t_s is not None and (
            isinstance(t_s, bool) or not isinstance(t_s, (int, float)) or not math.isfinite(t_s) or t_s < 0
        ):
            raise RealtimeError("t_s must be a finite number of seconds >= 0", "invalid_value", "t_s")
        if not await self._ensure_open(event_id):
            return
        t = float(t_s) if t_s is not None else max(self._now_s(), self._last_frame_s)
        error = await self._push_frame(fmt, data, t, event_id, "streamer.input_frame.append")
        if error is not None:
            self._refused(error, event_id, "image")

    async def _response_create(self, ev: dict[str, Any], event_id: str | None) -> None:
        check_keys(ev, ("type", "event_id", "response"), "")
        params = parse_response_params(ev.get("response"), self.limits)
        active = self._response
        if active is not None:
            raise RealtimeError(
                f"Conversation already has an active response in progress: {active.id}. "
                "Wait until the response is finished before creating a new one.",
                "conversation_already_has_active_response",
            )
        if not await self._ensure_open(event_id):
            return
        wanted = params.instructions if params.instructions is not None else self.settings.instructions
        if wanted != self._in_effect:
            if wanted.strip():
                error = await self._forward(Text(wanted, "system"), event_id, "response.create")
                if error is not None:
                    self._refused(error, event_id, "instructions")
                    return
            self._in_effect = wanted
        max_out = params.max_output_tokens or self.settings.max_output_tokens
        response = OpenResponse(new_id("resp"), new_id("item"), self._last_item_id, max_out, params.metadata)
        question = self._held or self.settings.streamer.default_question
        ask = AskMsg(question, params.choices, self._sampling(params, max_out), response.id)
        error = await self._forward(ask, event_id, "response.create")
        if error is not None:
            self._refused(error, event_id)
            return
        self._held = None
        self._response = response
        for ev in response_started(response):
            self._emit(ev)
        self._last_item_id = response.item_id

    def _sampling(self, params: ResponseParams, max_out: int | str) -> Sampling:
        o = self.settings.streamer

        def pick(a: Any, b: Any) -> Any:
            return a if a is not None else b

        return Sampling(
            max_new_tokens=self.limits.max_new_tokens if max_out == "inf" else int(max_out),
            temperature=pick(params.temperature, o.temperature),
            top_k=pick(params.top_k, o.top_k),
            top_p=pick(params.top_p, o.top_p),
            seed=pick(params.seed, o.seed),
        )

    async def _response_cancel(self, ev: dict[str, Any], event_id: str | None) -> None:
        check_keys(ev, ("type", "event_id", "response_id"), "")
        wanted, response = ev.get("response_id"), self._response
        if response is None or (wanted is not None and wanted != response.id):
            raise RealtimeError(
                "Cancellation failed: no active response found"
                if response is None
                else f"response {wanted} is not active",
                "response_cancel_not_active",
                None if response is None else "response_id",
            )
        error = await self._forward(CancelMsg(response.id), event_id, "response.cancel")
        if error is not None:
            self._refused(error, event_id)

    # ---- into the live core --------------------------------------------------------------------
    async def _ensure_open(self, event_id: str | None) -> bool:
        """Open the engine session (once) with the settings so far; False if it was refused."""
        if self._opened:
            return True
        error = await self._forward(_setup_of(self.settings), event_id, "setup")
        if error is not None:
            self._refused(error, event_id, "session")
        if self.live.state is not LiveState.OPEN:
            return False
        self._opened = True
        self._t0 = self._clock()
        self._in_effect = self.settings.instructions
        return True

    def _check_setup(self, setup: Setup) -> None:
        """Refuse (RealtimeError naming the field) settings the engine would refuse when it opens."""
        try:
            self.live.check_setup(setup)
        except InputError as exc:
            param = _SETUP_PARAMS.get(exc.field or "", "session")
            raise RealtimeError(str(exc), "invalid_value", param) from None

    async def _flush_held(self, event_id: str | None) -> bool:
        """Add the waiting user text as a plain user turn (a newer turn displaces it as the question)."""
        held, self._held = self._held, None
        if held is None:
            return True
        error = await self._forward(Text(held, "user"), event_id, "conversation.item.create")
        if error is not None:
            self._refused(error, event_id)
            return False
        return True

    async def _push_frame(
        self, fmt: str, data: bytes, t_s: float, event_id: str | None, kind: str = "conversation.item.create"
    ) -> Error | None:
        self._last_frame_s = max(self._last_frame_s, t_s)
        return await self._forward(Frame(data, fmt, None, None, t_s), event_id, kind)

    async def _push_audio(self, data: bytes, t_s: float, event_id: str | None, kind: str) -> Error | None:
        """Input audio (the session's format) from ``t_s`` on, never before audio already sent."""
        fmt = self.settings.input_format
        if fmt.type == "audio/pcmu":
            data = ulaw_to_s16le(data)
        elif fmt.type == "audio/pcma":
            data = alaw_to_s16le(data)
        start = max(t_s, self._audio_end_s)
        for offset in range(0, len(data), _CHUNK_BYTES):
            chunk = data[offset : offset + _CHUNK_BYTES]
            message = Audio(chunk, "s16le", fmt.rate, 1, start if offset == 0 else None)
            error = await self._forward(message, event_id, kind)
            if error is not None:
                return error
        self._audio_end_s = start + len(data) / 2 / fmt.rate
        return None

    async def _forward(self, message: ClientMessage, event_id: str | None, kind: str) -> Error | None:
        """Hand one message to the live core; the error it caused, if any (others are translated)."""
        self._seq += 1
        message.seq = self._seq
        self._forwarded[self._seq] = _Forwarded(event_id, kind)
        while len(self._forwarded) > _FORWARDED_HISTORY:
            self._forwarded.popitem(last=False)
        await self.live.receive(message)
        mine: Error | None = None
        for reply in self.live.pending():
            if isinstance(reply, Error) and reply.seq == message.seq and mine is None:
                mine = reply
                if not reply.fatal:
                    continue
            self._on_live(reply)
        return mine

    async def _close_live(self) -> None:
        if self.live.state is LiveState.OPEN:
            await self.live.receive(CloseMsg())

    def _session_time(self, at: float | None) -> float:
        return self._now_s() if at is None else max(0.0, at - self._t0)

    def _now_s(self) -> float:
        return max(0.0, self._clock() - self._t0)

    # ---- out of the live core ------------------------------------------------------------------
    async def _pump(self) -> None:
        """Live messages → Realtime events, taking one only while this connection's queue has room."""
        while True:
            await self._out.room()
            message = await self.live.next_message()
            if message is None:
                break
            self._on_live(message)
        self._finish(self.live.close_reason)

    def _on_live(self, message: ServerMessage) -> None:
        response = self._response
        if isinstance(message, Ready):
            self._engine_session_id, self._budget = message.session_id, message.max_context_tokens
        elif isinstance(message, AnswerDelta):
            if response is not None and message.request_id == response.id and message.text:
                self._emit(response.delta(message.text))
        elif isinstance(message, AnswerDone):
            if response is not None and message.request_id == response.id:
                self._response_done(response, message)
        elif isinstance(message, Stats):
            if self.settings.streamer.stats:
                stats = {k: v for k, v in to_dict(message).items() if k != "type"}
                self._emit(event("streamer.session.stats", stats=stats))
        elif isinstance(message, GoAway):
            self._emit(
                event("streamer.session.go_away", seconds_left=message.seconds_left, reason=message.reason)
            )
        elif isinstance(message, Error):
            self._live_error(message, None)

    def _response_done(self, response: OpenResponse, done: AnswerDone) -> None:
        self._response = None
        session = self.live.session
        context = session.stats().context_tokens if session is not None else 0
        extension = {"finish_reason": done.finish_reason, "ttft_s": done.ttft_s, "latency_s": done.latency_s}
        status, details = response_status(done.finish_reason, done.error_code, done.error_message)
        events = response_finished(
            response, status, details, max(0, context - done.tokens), done.tokens, extension
        )
        for ev in events:
            self._emit(ev)
        self._remember(events[-1]["response"]["output"][0])

    # ---- output --------------------------------------------------------------------------------
    async def next_event(self) -> dict[str, Any] | None:
        """The next server event; None when the connection should be closed (see close_reason)."""
        return await self._out.next()

    def pending(self) -> list[dict[str, Any]]:
        """Take every queued event now, without waiting (for tests and polling adapters)."""
        return self._out.take_all()

    def _emit(self, ev: dict[str, Any]) -> None:
        if not self._out.put(ev):  # the client does not read: its queue was cleared
            self._own_error(WireCode.SLOW_CONSUMER.value, "the client does not read its events")
            self._finish(CloseReason.POLICY)
            self._spawn(self._close_live())

    def _own_error(
        self,
        code: str,
        message: str,
        param: str | None = None,
        event_id: str | None = None,
        error_type: str | None = None,
    ) -> None:
        self.hub.observer.error_sent(code)
        kind = error_type or error_type_of(code)
        self._emit(error_event(code, message, param=param, client_event_id=event_id, error_type=kind))

    def _refused(self, error: Error, event_id: str | None, param: str | None = None) -> None:
        """The error ``_forward`` returned: sent here unless it was fatal (those went out in order)."""
        if not error.fatal:
            self._live_error(error, event_id, param)

    def _live_error(self, error: Error, event_id: str | None, param: str | None = None) -> None:
        """A live core error as OpenAI's error event (already counted by the live core's metrics)."""
        if event_id is None and error.seq is not None:
            forwarded = self._forwarded.get(error.seq)
            event_id = forwarded.event_id if forwarded is not None else None
        ev = error_event(
            error.code,
            error.message,
            param=param,
            client_event_id=event_id,
            error_type=error_type_of(error.code),
        )
        self._emit(ev)

    def _add_item(self, item: dict[str, Any]) -> None:
        previous = self._last_item_id
        self._emit(event("conversation.item.added", previous_item_id=previous, item=item))
        self._emit(event("conversation.item.done", previous_item_id=previous, item=item))
        self._last_item_id = item["id"]
        self._remember(item)

    def _remember(self, item: dict[str, Any]) -> None:
        self._items[item["id"]] = item
        while len(self._items) > _ITEM_HISTORY:
            self._items.popitem(last=False)

    def _session_object(self) -> dict[str, Any]:
        resolved = {"engine_session_id": self._engine_session_id, "context_budget_tokens": self._budget}
        return session_object(self.settings, self.session_id, resolved)

    # ---- time and ending -----------------------------------------------------------------------
    async def _watchdog(self) -> None:
        """Before the engine session exists the live core has no clock running: the idle limit is kept here."""
        limit = self.limits.idle_timeout_s
        while not self._out.ended and not self._opened:
            await asyncio.sleep(min(_TICK_S, limit))
            if not self._opened and not self._out.ended and self._clock() - self._last_input_at > limit:
                self._own_error(ErrorCode.IDLE_TIMEOUT.value, f"no event for {limit:g} s")
                self._finish(CloseReason.POLICY)

    def _finish(self, reason: CloseReason | None) -> None:
        if self.close_reason is None:
            self.close_reason = reason
        self._out.end()

    async def connection_lost(self) -> None:
        """The transport is gone (or done): the live core ends the session. Call exactly once."""
        if self._lost:
            return
        self._lost = True
        self._out.end()
        await self.live.connection_lost()
        me = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not me]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)

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
            log.error("realtime connection %s: background task failed", self.live.peer, exc_info=exc)
            self._own_error(ErrorCode.INTERNAL.value, f"internal error: {exc!r}")
            self._finish(CloseReason.INTERNAL)
            self._spawn(self._close_live())


def _parse_json(text: str) -> dict[str, Any]:
    try:
        obj = jsonio.loads(text)
    except (ValueError, RecursionError) as exc:
        raise RealtimeError(f"malformed JSON: {exc}", "invalid_json") from None
    if not isinstance(obj, dict):
        raise RealtimeError("an event must be a JSON object", "invalid_json")
    return obj
