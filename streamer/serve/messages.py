"""The messages of a live session, independent of any transport.

Client messages mirror :mod:`streamer.engine.protocol` one to one (``Setup`` → ``OpenSession``,
``Frame`` → ``PushFrame``, ``Audio`` → ``PushAudio``, ``Text`` → ``PushText``, ``AskMsg`` →
``Ask``, ``CancelMsg`` → ``Cancel``, ``CloseMsg`` → ``CloseSession``); media arrive encoded
(JPEG/PNG/WebP/raw RGB, PCM at any rate) and are decoded by :mod:`streamer.serve.live`.
Server messages mirror the engine's events: ``Ready``, ``AnswerDelta``, ``AnswerDone``,
``Stats``, ``Error``, ``GoAway``.

Every message has a wire name (``TYPE``). :func:`to_dict` and :func:`client_message_from_dict`
convert to and from plain dicts whose keys are the field names below; the WebSocket adapter
sends them as JSON (:mod:`streamer.serve.ws`), the gRPC adapter maps them to protobuf fields of
the same names. :func:`client_message_from_dict` checks every field's type and raises
:class:`~streamer.errors.ProtocolError` (code ``bad_message``) naming the field; value ranges
and limits are checked later by the protocol core.

Sequence numbers (``seq``) are client-chosen integers in ``[0, 2**32)``, strictly increasing
on one connection; ``None`` lets the server number the message (previous + 1).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

from streamer.errors import ProtocolError

__all__ = [
    "SEQ_MAX",
    "WireCode",
    "Sampling",
    "Setup",
    "Frame",
    "Audio",
    "Text",
    "AskMsg",
    "CancelMsg",
    "CloseMsg",
    "ClientMessage",
    "Ready",
    "AnswerDelta",
    "AnswerDone",
    "Stats",
    "Error",
    "GoAway",
    "ServerMessage",
    "CLIENT_TYPES",
    "IMAGE_FORMATS",
    "PCM_FORMATS",
    "to_dict",
    "client_message_from_dict",
]

SEQ_MAX = 2**32 - 1  # the largest sequence number (the binary header stores it in 32 bits)
IMAGE_FORMATS = ("jpeg", "png", "webp", "rgb")
PCM_FORMATS = ("s16le", "f32le")


class WireCode(str, enum.Enum):
    """Error codes the serving layer adds to :class:`streamer.engine.protocol.ErrorCode`.

    An ``Error`` message's ``code`` is one of these or one of the engine's codes
    (``invalid_input``, ``queue_full``, ``session_closed``, ``session_limit``, ``context_full``,
    ``idle_timeout``, ``model_error``, ``unavailable``, ``internal``); the full table with which
    ones close the connection is in ``docs/protocol.md``.
    """

    BAD_MESSAGE = "bad_message"  # unparsable JSON, unknown type, a missing or mistyped field
    BAD_HEADER = "bad_header"  # a binary media message whose header is malformed
    BAD_SEQ = "bad_seq"  # a sequence number that does not increase (the message is ignored)
    MESSAGE_TOO_LARGE = "message_too_large"  # over ServeLimits.max_message_bytes
    UNSUPPORTED_MEDIA = "unsupported_media"  # an image or PCM chunk that cannot be decoded or is over a limit
    PROTOCOL_VIOLATION = "protocol_violation"  # out of order (input before setup, a second setup): closes
    UNAUTHORIZED = "unauthorized"  # missing or wrong API key
    SESSION_EXPIRED = "session_expired"  # ServeLimits.max_session_s reached: closes
    SLOW_CONSUMER = "slow_consumer"  # the client does not read its messages: closes
    GOING_AWAY = "going_away"  # the server is shutting down


# ---- client → server ---------------------------------------------------------------------------


@dataclass
class Sampling:
    """Sampling overrides; ``None`` keeps the session default (setup) or the engine default."""

    max_new_tokens: int | None = None  # tokens, the answer's cap (at most ServeLimits.max_new_tokens)
    temperature: float | None = None  # 0 = greedy
    top_k: int | None = None  # 0 = off
    top_p: float | None = None  # 1 = off
    seed: int | None = None  # reproducible sampling


@dataclass
class Setup:
    """The first message of a connection: opens the session (→ ``OpenSession``)."""

    TYPE: ClassVar[str] = "setup"
    seq: int | None = None
    system_prompt: str | None = None
    max_context_tokens: int | None = None  # tokens of KV budget (None: the server's default)
    evict_to_fraction: float | None = None  # share of the budget kept after an eviction
    frame_soft_tokens: int | None = None  # soft tokens per frame: 70/140/280/560/1120
    audio_segment_s: float | None = None  # seconds per audio segment
    fps: float | None = None  # pictures per second taken in (others skipped before decoding); default 1
    sampling: Sampling | None = None  # defaults for every question of the session


@dataclass
class Frame:
    """A picture (→ ``PushFrame``): JPEG/PNG/WebP bytes, or packed RGB24 with its size."""

    TYPE: ClassVar[str] = "frame"
    data: bytes = b""
    format: str = "jpeg"  # jpeg | png | webp | rgb
    width: int | None = None  # pixels, rgb only
    height: int | None = None  # pixels, rgb only
    t_s: float | None = None  # seconds on the session clock (None: arrival time)
    seq: int | None = None


@dataclass
class Audio:
    """A PCM chunk (→ ``PushAudio`` after resampling to 16 kHz mono)."""

    TYPE: ClassVar[str] = "audio"
    data: bytes = b""
    format: str = "s16le"  # s16le | f32le, little-endian, interleaved
    sample_rate: int = 16_000  # Hz
    channels: int = 1
    t_s: float | None = None  # seconds of the chunk's first sample (None: after the previous chunk)
    seq: int | None = None


@dataclass
class Text:
    """A chat turn that is not a question (→ ``PushText``)."""

    TYPE: ClassVar[str] = "text"
    text: str = ""
    role: str = "user"  # system | user | assistant
    seq: int | None = None


@dataclass
class AskMsg:
    """A question about everything sent so far (→ ``Ask``); a running answer is cancelled."""

    TYPE: ClassVar[str] = "ask"
    question: str = ""
    choices: tuple[str, ...] = ()  # when set, the answer is exactly one of these
    sampling: Sampling | None = None  # overrides of the session's defaults
    request_id: str | None = None  # echoed in the answer (None: the server makes one)
    seq: int | None = None


@dataclass
class CancelMsg:
    """Stop the running answer (→ ``Cancel``); ``request_id`` None: whichever runs."""

    TYPE: ClassVar[str] = "cancel"
    request_id: str | None = None
    seq: int | None = None


@dataclass
class CloseMsg:
    """End the session (→ ``CloseSession``); the server answers with final stats and closes."""

    TYPE: ClassVar[str] = "close"
    seq: int | None = None


ClientMessage = Setup | Frame | Audio | Text | AskMsg | CancelMsg | CloseMsg
CLIENT_TYPES: dict[str, type] = {
    cls.TYPE: cls for cls in (Setup, Frame, Audio, Text, AskMsg, CancelMsg, CloseMsg)
}

# ---- server → client ---------------------------------------------------------------------------


@dataclass
class Ready:
    """The session is open."""

    TYPE: ClassVar[str] = "ready"
    session_id: str
    max_context_tokens: int  # tokens, the session's KV budget
    limits: dict[str, Any] = field(default_factory=dict)  # ServeLimits.public(): what the server accepts
    seq: int | None = None  # the setup's sequence number


@dataclass
class AnswerDelta:
    """New text of an answer (several engine deltas are merged while the client reads slowly)."""

    TYPE: ClassVar[str] = "answer_delta"
    request_id: str
    text: str
    token_ids: list[int] = field(default_factory=list)


@dataclass
class AnswerDone:
    """The end of an answer."""

    TYPE: ClassVar[str] = "answer_done"
    request_id: str
    finish_reason: str  # stop | length | choice | cancelled | closed | error
    ttft_s: float | None = None  # seconds from the question to the first token (None: no token)
    tokens: int = 0  # tokens generated
    latency_s: float | None = None  # seconds from the question's arrival to this message
    error_code: str | None = None  # when finish_reason is error
    error_message: str | None = None
    seq: int | None = None  # the question's sequence number


@dataclass
class Stats:
    """The session's figures (sent every ``stats_interval_s``, after each answer and at close)."""

    TYPE: ClassVar[str] = "stats"
    session_id: str
    t_s: float  # seconds since the session opened
    context_tokens: int  # tokens in the full-attention cache
    max_context_tokens: int  # tokens, the budget
    evicted_tokens: int  # tokens evicted so far
    evictions: int  # eviction rounds so far
    queued_tokens: int  # tokens accepted, not yet prefilled
    queued_bytes: int  # bytes of queued media
    dropped_frames: int  # frames dropped by the engine under overload
    skipped_frames: int  # pictures not taken by the fps policy (never decoded)
    frames: int  # frames prefilled
    audio_s: float  # seconds of audio prefilled
    last_consumed_seq: int | None  # the last client seq the engine has taken in
    last_received_seq: int | None  # the last client seq the server has received
    outbound_queued: int  # server messages waiting to be sent on this connection


@dataclass
class Error:
    """Something went wrong; ``fatal`` errors are followed by the end of the connection."""

    TYPE: ClassVar[str] = "error"
    code: str  # a WireCode or engine ErrorCode value
    message: str
    seq: int | None = None  # the client message concerned, when known
    request_id: str | None = None  # the answer concerned, when known
    fatal: bool = False


@dataclass
class GoAway:
    """The server will end this session in ``seconds_left`` (drain or session duration limit)."""

    TYPE: ClassVar[str] = "go_away"
    seconds_left: float
    reason: str = ""


ServerMessage = Ready | AnswerDelta | AnswerDone | Stats | Error | GoAway

# ---- dict form ---------------------------------------------------------------------------------


def to_dict(message: Any) -> dict[str, Any]:
    """A message as a plain dict: ``{"type": TYPE, field: value, ...}`` (bytes as base64 text)."""
    out: dict[str, Any] = {"type": message.TYPE}
    for f in dataclasses.fields(message):
        value = getattr(message, f.name)
        if isinstance(value, (bytes, bytearray, memoryview)):
            value = base64.b64encode(bytes(value)).decode("ascii")
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = {k: v for k, v in dataclasses.asdict(value).items() if v is not None}
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def client_message_from_dict(data: object) -> ClientMessage:
    """The client message a dict describes; ProtocolError(bad_message) names what is wrong."""
    if not isinstance(data, dict):
        raise ProtocolError("a message must be an object", WireCode.BAD_MESSAGE.value)
    seq = data.get("seq")
    seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else None
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError('a message needs a string "type"', WireCode.BAD_MESSAGE.value, seq)
    cls = CLIENT_TYPES.get(kind)
    if cls is None:
        raise ProtocolError(
            f"unknown message type {kind!r} (one of {', '.join(CLIENT_TYPES)})",
            WireCode.BAD_MESSAGE.value,
            seq,
        )
    return _build(cls, data, kind, seq)


def _build(cls: type, data: dict[str, Any], where: str, seq: int | None) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(k for k in data if k not in names and k != "type")
    if unknown:
        raise ProtocolError(f"{where}: unknown field {unknown[0]!r}", WireCode.BAD_MESSAGE.value, seq)
    values = {
        name: _convert(data[name], hints[name], f"{where}.{name}", seq) for name in names if name in data
    }
    return cls(**values)


def _convert(value: Any, hint: Any, where: str, seq: int | None) -> Any:
    options = typing.get_args(hint) if _is_union(hint) else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise ProtocolError(f"{where} must not be null", WireCode.BAD_MESSAGE.value, seq)
    for option in options:
        if option is type(None):
            continue
        converted = _convert_one(value, option, where, seq)
        if converted is not _NO:
            return converted
    wanted = " or ".join(_name(o) for o in options if o is not type(None))
    raise ProtocolError(f"{where} must be {wanted}, got {_json_type(value)}", WireCode.BAD_MESSAGE.value, seq)


_NO = object()


def _convert_one(value: Any, hint: Any, where: str, seq: int | None) -> Any:
    if hint is bool:
        return value if isinstance(value, bool) else _NO
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return _NO
        if where.endswith(".seq") and not 0 <= value <= SEQ_MAX:
            raise ProtocolError(f"{where} must be in [0, {SEQ_MAX}]", WireCode.BAD_MESSAGE.value, seq)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return _NO
        if not math.isfinite(value):
            raise ProtocolError(f"{where} must be finite", WireCode.BAD_MESSAGE.value, seq)
        return float(value)
    if hint is str:
        return value if isinstance(value, str) else _NO
    if hint is bytes:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        if isinstance(value, str):
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise ProtocolError(f"{where} is not valid base64", WireCode.BAD_MESSAGE.value, seq) from None
        return _NO
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            return _NO
        return tuple(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            return _NO
        return _build(hint, value, where, seq)
    raise TypeError(f"no conversion for {hint!r}")  # a bug in this module's annotations


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) is Union or isinstance(hint, types.UnionType)


def _name(hint: Any) -> str:
    if typing.get_origin(hint) is tuple:
        return "a list of strings"
    if dataclasses.is_dataclass(hint):
        return "an object"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        bytes: "base64 text",
    }.get(hint, str(hint))


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
