"""The WebSocket ``/v1/live`` adapter: JSON control messages, binary media, one LiveProtocol.

Framing (``docs/protocol.md`` has the full description and an example exchange):

* text messages are JSON objects ``{"type": ..., ...}`` with the fields of
  :mod:`streamer.serve.messages` (client: setup, text, ask, cancel, close, and frame/audio with
  base64 ``data``; server: ready, answer_delta, answer_done, stats, error, go_away);
* binary messages are media: a 24-byte little-endian header, then the payload.

    offset  type  field
    0       u8    version   (1)
    1       u8    kind      1 = frame, 2 = audio
    2       u8    format    frame: 1 jpeg, 2 png, 3 webp, 4 rgb;  audio: 1 s16le, 2 f32le
    3       u8    flags     bit 0: t_s is set (else the server uses arrival time)
    4       u32   seq
    8       f64   t_s       seconds on the session clock
    16      u32   frame: width (rgb only, else 0)   | audio: sample_rate (Hz)
    20      u32   frame: height (rgb only, else 0)  | audio: channels
    24      ...   payload: JPEG/PNG/WebP bytes, packed RGB24 rows, or interleaved PCM

:func:`decode_client` and :func:`encode_server` are pure (bytes/str in, messages out);
:func:`run_live_websocket` is the only code that touches a socket.
"""

from __future__ import annotations

import asyncio
import math
import struct
from typing import Any

from streamer import jsonio
from streamer.errors import ProtocolError
from streamer.serve.hub import LiveHub
from streamer.serve.live import CloseReason, LiveProtocol, LiveState
from streamer.serve.messages import (
    Audio,
    ClientMessage,
    Frame,
    ServerMessage,
    WireCode,
    client_message_from_dict,
    to_dict,
)

__all__ = [
    "HEADER",
    "HEADER_BYTES",
    "WS_CLOSE_CODES",
    "decode_client",
    "encode_media",
    "encode_server",
    "decode_server",
    "run_live_websocket",
]

HEADER = struct.Struct("<BBBBIdII")
HEADER_BYTES = HEADER.size  # 24
VERSION = 1
KIND_FRAME, KIND_AUDIO = 1, 2
FLAG_T_S = 1
_FRAME_FORMATS = {1: "jpeg", 2: "png", 3: "webp", 4: "rgb"}
_AUDIO_FORMATS = {1: "s16le", 2: "f32le"}
_FRAME_CODES = {v: k for k, v in _FRAME_FORMATS.items()}
_AUDIO_CODES = {v: k for k, v in _AUDIO_FORMATS.items()}

WS_CLOSE_CODES: dict[CloseReason, int] = {
    CloseReason.NORMAL: 1000,
    CloseReason.GOING_AWAY: 1001,
    CloseReason.PROTOCOL_VIOLATION: 1008,
    CloseReason.POLICY: 1008,
    CloseReason.INTERNAL: 1011,
    CloseReason.TRY_AGAIN: 1013,
}
_WRITER_WAIT_S = 5.0  # seconds a finished connection waits for its last messages to be written


def decode_client(text: str | None, data: bytes | None, max_bytes: int) -> ClientMessage:
    """One WebSocket message as a client message; ProtocolError with a stable code if it is not one."""
    size = len(data) if data is not None else len(text.encode("utf-8")) if text is not None else 0
    if size > max_bytes:
        seq = _peek_seq(data) if data is not None else None
        raise ProtocolError(
            f"message of {size} bytes is over the limit of {max_bytes}", WireCode.MESSAGE_TOO_LARGE.value, seq
        )
    if data is not None:
        return decode_media(data)
    if text is None:
        raise ProtocolError("empty message", WireCode.BAD_MESSAGE.value)
    try:
        obj = jsonio.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"malformed JSON: {exc}", WireCode.BAD_MESSAGE.value) from None
    return client_message_from_dict(obj)


def _peek_seq(data: bytes) -> int | None:
    return int.from_bytes(data[4:8], "little") if len(data) >= 8 else None


def decode_media(data: bytes) -> Frame | Audio:
    """A binary media message (header + payload) as a Frame or Audio message."""
    if len(data) < HEADER_BYTES:
        raise ProtocolError(
            f"binary message of {len(data)} bytes is shorter than the {HEADER_BYTES}-byte header",
            WireCode.BAD_HEADER.value,
            _peek_seq(data),
        )
    version, kind, fmt, flags, seq, t_s, a, b = HEADER.unpack_from(data)
    bad = WireCode.BAD_HEADER.value
    if version != VERSION:
        raise ProtocolError(f"unknown header version {version} (this server speaks {VERSION})", bad, seq)
    if flags & ~FLAG_T_S:
        raise ProtocolError(f"unknown header flags {flags:#x}", bad, seq)
    t = None
    if flags & FLAG_T_S:
        if not math.isfinite(t_s):
            raise ProtocolError("header t_s is not finite", bad, seq)
        t = t_s
    payload = bytes(memoryview(data)[HEADER_BYTES:])
    if kind == KIND_FRAME:
        name = _FRAME_FORMATS.get(fmt)
        if name is None:
            raise ProtocolError(f"unknown frame format code {fmt}", bad, seq)
        if name == "rgb":
            return Frame(payload, name, a, b, t, seq)
        if a or b:
            raise ProtocolError("width/height are set only for rgb frames", bad, seq)
        return Frame(payload, name, None, None, t, seq)
    if kind == KIND_AUDIO:
        name = _AUDIO_FORMATS.get(fmt)
        if name is None:
            raise ProtocolError(f"unknown audio format code {fmt}", bad, seq)
        return Audio(payload, name, a, b, t, seq)
    raise ProtocolError(f"unknown media kind {kind} (1 = frame, 2 = audio)", bad, seq)


def encode_media(message: Frame | Audio) -> bytes:
    """A Frame or Audio message as a binary WebSocket message (for clients, tests, benchmarks)."""
    seq = message.seq if message.seq is not None else 0
    flags = FLAG_T_S if message.t_s is not None else 0
    t = message.t_s if message.t_s is not None else 0.0
    if isinstance(message, Frame):
        head = HEADER.pack(
            VERSION,
            KIND_FRAME,
            _FRAME_CODES[message.format],
            flags,
            seq,
            t,
            message.width or 0,
            message.height or 0,
        )
    else:
        head = HEADER.pack(
            VERSION,
            KIND_AUDIO,
            _AUDIO_CODES[message.format],
            flags,
            seq,
            t,
            message.sample_rate,
            message.channels,
        )
    return head + bytes(message.data)


def encode_server(message: ServerMessage) -> str:
    """A server message as JSON text."""
    return jsonio.dumps(to_dict(message), ensure_ascii=False, separators=(",", ":"))


def decode_server(text: str) -> dict[str, Any]:
    """A server message's JSON as a dict (clients)."""
    obj = jsonio.loads(text)
    if not isinstance(obj, dict) or "type" not in obj:
        raise ProtocolError("a server message must be an object with a type")
    return obj


# ---- the adapter -------------------------------------------------------------------------------


async def run_live_websocket(websocket: Any, hub: LiveHub, peer: str = "") -> None:
    """Serve one accepted Starlette WebSocket with a LiveProtocol until either side ends it."""
    proto = hub.connect(peer)
    writer = asyncio.create_task(_write(websocket, proto))
    limit = hub.limits.max_message_bytes
    gone = False
    try:
        while not proto.finished:
            event = await websocket.receive()
            if event["type"] == "websocket.disconnect":
                gone = True
                break
            text, data = event.get("text"), event.get("bytes")
            try:
                message = decode_client(text, data, limit)
            except ProtocolError as exc:
                proto.reject(exc)
                continue
            hub.observer.message_received(message.TYPE, len(data) if data is not None else len(text or ""))
            await proto.receive(message)
    except Exception:  # the socket failed under us (our own code raises nothing): the peer is gone
        gone = True
    finally:
        await end_connection(proto, writer, gone)


async def end_connection(proto: Any, writer: asyncio.Task[None], gone: bool) -> None:
    """After the read loop of a WebSocket (live or realtime): let the writer flush unless the peer is
    gone, tell the protocol, and stop the writer."""
    if not gone:
        await asyncio.wait([writer], timeout=_WRITER_WAIT_S)
    await proto.connection_lost()
    if not writer.done():
        writer.cancel()
        await asyncio.wait([writer], timeout=_WRITER_WAIT_S)


async def refuse_unauthorized(websocket: Any, hub: LiveHub) -> None:
    """Refuse a WebSocket whose API key is missing or wrong: HTTP 401 where the server can send one."""
    from starlette.responses import PlainTextResponse

    hub.observer.error_sent(WireCode.UNAUTHORIZED.value)
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        denial = PlainTextResponse("unauthorized: missing or wrong API key\n", status_code=401)
        await websocket.send_denial_response(denial)
    else:
        await websocket.close(code=1008, reason="unauthorized")  # before accept: HTTP 403


async def _write(websocket: Any, proto: LiveProtocol) -> None:
    try:
        while (message := await proto.next_message()) is not None:
            await websocket.send_text(encode_server(message))
        if proto.close_reason is not None and proto.state is not LiveState.CLOSED:
            await websocket.close(code=WS_CLOSE_CODES[proto.close_reason], reason=proto.close_reason.value)
    except (OSError, RuntimeError):  # the peer is gone; the reader notices and cleans up
        pass
    except Exception as exc:  # starlette's WebSocketDisconnect and friends
        if type(exc).__name__ not in ("WebSocketDisconnect", "ClientDisconnected", "ConnectionClosed"):
            raise
