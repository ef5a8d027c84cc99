"""The gRPC ``Live`` stream: a thin adapter over :class:`~streamer.serve.live.LiveProtocol`.

Per call: ``hub.connect(peer)`` → a reader task feeds every ``LiveRequest`` (converted by
:mod:`streamer.serve.grpc_convert`) to ``proto.receive`` one at a time, or ``proto.reject`` when
it cannot be parsed → the handler writes ``proto.next_message()`` until it returns None →
``proto.connection_lost()`` in every case. All protocol decisions are the core's; this module
only maps wire formats and the ending:

- the client half-closes its side: the running answer is finished, then the session is
  closed as with ``close`` (the call ends OK after the final stats);
- the core ends the connection: after a fatal ``error`` message (sent in-band first), the
  status of its code (e.g. ``protocol_violation`` → FAILED_PRECONDITION, ``idle_timeout`` →
  ABORTED, ``session_closed`` → NOT_FOUND, ``going_away`` → UNAVAILABLE); without one,
  NORMAL → OK and the other close reasons their code's status;
- a picture or PCM chunk over ``limits.max_message_bytes`` gets a ``message_too_large`` error
  event here (the WebSocket rule); a gRPC message over that + 1 MiB is refused by gRPC itself
  (RESOURCE_EXHAUSTED, the call ends);
- the client goes away or cancels (including past its deadline): the handler is cancelled,
  ``connection_lost`` cancels the answer and closes the session. Other calls are untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc

from streamer.errors import ProtocolError
from streamer.serve import grpc_convert
from streamer.serve.grpc_errors import CODE_KEY, status_of
from streamer.serve.hub import LiveHub
from streamer.serve.live import CloseReason, LiveProtocol
from streamer.serve.messages import CloseMsg, Error
from streamer.serve.proto.streamer.v1 import streamer_pb2 as pb

__all__ = ["Malformed", "lenient", "serve_live"]

_HALF_CLOSE_POLL_S = 0.01  # seconds between checks for the running answer's end after a half-close
_REASON_CODE = {
    CloseReason.PROTOCOL_VIOLATION: "protocol_violation",
    CloseReason.POLICY: "slow_consumer",
    CloseReason.TRY_AGAIN: "session_limit",
    CloseReason.GOING_AWAY: "going_away",
    CloseReason.INTERNAL: "internal",
}


class Malformed:
    """What the lenient deserializer yields for bytes that are not a valid message."""

    def __init__(self, reason: str):
        self.reason = reason


def _payload_check(req: pb.LiveRequest, max_bytes: int) -> None:
    """The WebSocket rule for gRPC: a picture or PCM chunk over ``max_message_bytes`` is refused."""
    kind = req.WhichOneof("message")
    if kind in ("frame", "audio"):
        size = len(getattr(req, kind).data)
        if size > max_bytes:
            seq = req.seq if req.HasField("seq") else None
            raise ProtocolError(
                f"{kind} of {size} bytes is over the limit of {max_bytes}", "message_too_large", seq
            )


async def _read(requests: AsyncIterator[Any], proto: LiveProtocol) -> None:
    max_bytes = proto.limits.max_message_bytes
    async for req in requests:
        if proto.finished:
            return
        if isinstance(req, Malformed):
            proto.reject(ProtocolError(f"cannot parse the LiveRequest: {req.reason}", "bad_message"))
            continue
        try:
            _payload_check(req, max_bytes)
            message = grpc_convert.client_message(req)
        except ProtocolError as exc:
            proto.reject(exc)
            continue
        proto.hub.observer.message_received(message.TYPE, req.ByteSize())
        await proto.receive(message)
    while proto.answering and not proto.finished:  # half-close: let the running answer end
        await asyncio.sleep(_HALF_CLOSE_POLL_S)
    if not proto.finished:
        await proto.receive(CloseMsg())


async def serve_live(hub: LiveHub, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> None:
    """Run one ``Live`` call to its end (see the module docstring)."""
    proto = hub.connect(peer=context.peer() or "")
    reader = asyncio.ensure_future(_read(requests, proto))
    reader.add_done_callback(lambda t: t.cancelled() or t.exception())  # a reset stream ends it quietly
    fatal: Error | None = None
    try:
        while (message := await proto.next_message()) is not None:
            if isinstance(message, Error) and message.fatal:
                fatal = message
            await context.write(grpc_convert.live_response(message))
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await proto.connection_lost()
    reason = proto.close_reason
    if fatal is not None:
        code, text = fatal.code, fatal.message
    elif reason is None or reason is CloseReason.NORMAL:
        return
    else:
        code, text = _REASON_CODE.get(reason, "internal"), reason.value
    await context.abort(status_of(code), f"[{code}] {text}", trailing_metadata=((CODE_KEY, code),))


def lenient(cls: Any) -> Any:
    """A deserializer for ``cls`` that yields :class:`Malformed` for bad bytes instead of failing the call."""
    from google.protobuf.message import DecodeError

    def parse(data: bytes) -> Any:
        try:
            return cls.FromString(data)
        except DecodeError as exc:
            return Malformed(str(exc) or "not a protobuf message")

    return parse
