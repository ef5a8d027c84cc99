"""OpenAI Realtime (GA) events as plain dicts: the client events /v1/realtime reads, the server events it writes.

Pure functions and dataclasses, no state and no I/O; :mod:`streamer.serve.realtime` holds the
state machine. Client events are checked here field by field: anything streamer cannot honour
raises :class:`RealtimeError` naming the field (OpenAI's ``param``), nothing is dropped
silently. The few fields that are accepted without effect (voice, noise reduction, tracing,
...) are listed in ``ACCEPTED_WITHOUT_EFFECT`` and in docs/realtime.md.

streamer's additions live under a ``streamer`` key (``session.streamer``,
``response.streamer``, the ``streamer.*`` event types), which stock clients never send and
ignore when they receive them.

    StreamerError
    └── InputError
        └── ProtocolError
            └── RealtimeError     a client event /v1/realtime refuses (adds ``param`` and the OpenAI error ``type``)
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from streamer.errors import ProtocolError
from streamer.media.g711 import G711_RATE
from streamer.serve.limits import ServeLimits

__all__ = [
    "ACCEPTED_WITHOUT_EFFECT",
    "AudioFormat",
    "CLIENT_EVENTS",
    "DEFAULT_QUESTION",
    "ImagePart",
    "AudioPart",
    "ParsedItem",
    "RealtimeError",
    "ResponseParams",
    "SessionSettings",
    "StreamerOptions",
    "apply_session_update",
    "check_keys",
    "assistant_item",
    "error_type_of",
    "response_object",
    "response_status",
    "usage_object",
    "decode_base64",
    "decode_data_url",
    "error_event",
    "event",
    "new_id",
    "parse_item",
    "parse_response_params",
    "session_object",
]

DEFAULT_QUESTION = "Respond to the latest input."  # asked when the latest user turn has no text
_PCM_RATE = 24_000  # Hz, OpenAI's audio/pcm rate (the default here; other rates are streamer's extension)
_IMAGE_MIME = {"image/jpeg": "jpeg", "image/jpg": "jpeg", "image/png": "png", "image/webp": "webp"}
_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)(?P<params>(;[^;,]*)*?);base64,(?P<data>.*)", re.S)

# The client events of the GA Realtime API (openai.types.realtime.RealtimeClientEvent) and streamer's own.
CLIENT_EVENTS = (
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.retrieve",
    "conversation.item.delete",
    "conversation.item.truncate",
    "response.create",
    "response.cancel",
    "output_audio_buffer.clear",
    "streamer.input_frame.append",
)

# Fields taken and echoed but without effect, and why (a decision, not an oversight).
ACCEPTED_WITHOUT_EFFECT = {
    "session.model": "the server serves the model it loaded; the name is echoed",
    "session.audio.output": "voice, speed and output format matter only for audio output, which is off",
    "session.audio.input.noise_reduction": "the model hears the audio as sent",
    "session.tracing": "no OpenAI trace dashboard",
    "session.include": "only concerns input transcription logprobs",
    "session.parallel_tool_calls": "no tools",
    "response.audio": "as session.audio.output",
    "response.metadata": "echoed in the response object",
    "input_image.detail": "pictures get the session's frame_soft_tokens (streamer.frame_soft_tokens)",
}


class RealtimeError(ProtocolError):
    """A client event /v1/realtime refuses: ``code`` and ``param`` as OpenAI's error object has them."""

    def __init__(
        self,
        message: str,
        code: str = "invalid_value",
        param: str | None = None,
        error_type: str = "invalid_request_error",
    ):
        super().__init__(message, code)
        self.param = param
        self.error_type = error_type


def _unsupported(param: str, what: str) -> RealtimeError:
    return RealtimeError(f"{param}: {what}", "unsupported_parameter", param)


# ---- ids and envelopes -------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    """A unique id in OpenAI's style (``event_…``, ``item_…``, ``resp_…``, ``sess_…``)."""
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """A server event: ``{"type": kind, "event_id": "event_…", **fields}``."""
    return {"type": kind, "event_id": new_id("event"), **fields}


def error_event(
    code: str,
    message: str,
    *,
    param: str | None = None,
    client_event_id: str | None = None,
    error_type: str = "invalid_request_error",
) -> dict[str, Any]:
    """OpenAI's ``error`` event; ``client_event_id`` names the client event that caused it."""
    return event(
        "error",
        error={
            "type": error_type,
            "code": code,
            "message": message,
            "param": param,
            "event_id": client_event_id,
        },
    )


# ---- value checks ------------------------------------------------------------------------------


def _obj(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RealtimeError(f"{param} must be an object", "invalid_type", param)
    return value


def _str(value: Any, param: str, max_chars: int | None = None) -> str:
    if not isinstance(value, str):
        raise RealtimeError(f"{param} must be a string", "invalid_type", param)
    if max_chars is not None and len(value) > max_chars:
        raise RealtimeError(
            f"{param} is longer than {max_chars} characters", "string_above_max_length", param
        )
    return value


def _int(value: Any, param: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RealtimeError(f"{param} must be an integer", "invalid_type", param)
    if not low <= value <= high:
        raise RealtimeError(f"{param} must be in [{low}, {high}], got {value}", "invalid_value", param)
    return value


def _num(value: Any, param: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RealtimeError(f"{param} must be a finite number", "invalid_type", param)
    if not low <= value <= high:
        raise RealtimeError(f"{param} must be in [{low:g}, {high:g}], got {value:g}", "invalid_value", param)
    return float(value)


def check_keys(obj: dict[str, Any], allowed: tuple[str, ...], param: str) -> None:
    """RealtimeError(unknown_parameter) for a key of ``obj`` not in ``allowed`` (``param``: where obj is)."""
    for key in obj:
        if key not in allowed:
            name = f"{param}.{key}" if param else str(key)
            raise RealtimeError(f"Unknown parameter: '{name}'.", "unknown_parameter", name)


def decode_base64(value: Any, param: str) -> bytes:
    """Standard base64 text as bytes (RealtimeError naming ``param`` otherwise)."""
    text = _str(value, param)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RealtimeError(f"{param} is not valid base64", "invalid_value", param) from None


def decode_data_url(value: Any, param: str) -> tuple[str, bytes]:
    """A ``data:image/...;base64,...`` URL as (format, bytes); no URL is ever fetched."""
    text = _str(value, param)
    match = _DATA_URL.fullmatch(text)
    if match is None:
        if text.startswith(("http://", "https://", "file:")):
            raise _unsupported(param, "only data: URLs are accepted (streamer fetches nothing)")
        raise RealtimeError(f"{param} must be a data:image/...;base64,... URL", "invalid_value", param)
    fmt = _IMAGE_MIME.get(match["mime"].lower())
    if fmt is None:
        raise RealtimeError(
            f"{param}: image type {match['mime']} is not supported (jpeg, png, webp)", "invalid_value", param
        )
    return fmt, decode_base64(match["data"], param)


# ---- session -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioFormat:
    """The input audio format: ``audio/pcm`` (16-bit little-endian mono) at ``rate``, or G.711 at 8 kHz."""

    type: str = "audio/pcm"  # audio/pcm | audio/pcmu | audio/pcma
    rate: int = _PCM_RATE  # Hz

    def public(self) -> dict[str, Any]:
        return {"type": self.type, "rate": self.rate}

    @property
    def bytes_per_second(self) -> int:
        return self.rate * (2 if self.type == "audio/pcm" else 1)


@dataclass(frozen=True)
class StreamerOptions:
    """``session.streamer``: what OpenAI's session has no field for. Setup fields are fixed once input arrived."""

    fps: float = 1.0  # pictures per second taken from streamer.input_frame.append (items are always taken)
    max_context_tokens: int | None = None  # tokens of KV budget (None: the server's default)
    frame_soft_tokens: int | None = None  # 70/140/280/560/1120 (None: the engine's 70)
    audio_segment_s: float | None = None  # seconds per audio segment (None: the engine's 1 s)
    temperature: float | None = None  # sampling defaults for every response (None: greedy)
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stats: bool = False  # send streamer.session.stats events
    default_question: str = DEFAULT_QUESTION  # asked when the latest user turn has no text

    SETUP_FIELDS = ("fps", "max_context_tokens", "frame_soft_tokens", "audio_segment_s")

    def public(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class SessionSettings:
    """The effective session configuration (what ``session.created`` / ``session.updated`` show)."""

    model: str = "streamer"
    instructions: str = ""
    input_format: AudioFormat = field(default_factory=AudioFormat)
    max_output_tokens: int | str = "inf"  # tokens, or "inf": the server's max_new_tokens
    noise_reduction: dict[str, Any] | None = None  # accepted without effect
    tracing: Any = None  # accepted without effect
    retention_ratio: float | None = None  # truncation retention_ratio: share kept after an eviction
    streamer: StreamerOptions = field(default_factory=StreamerOptions)


def session_object(settings: SessionSettings, session_id: str, resolved: dict[str, Any]) -> dict[str, Any]:
    """The GA ``realtime.session`` object for ``session.created`` / ``session.updated``."""
    truncation: Any = "auto"
    if settings.retention_ratio is not None:
        truncation = {"type": "retention_ratio", "retention_ratio": settings.retention_ratio}
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": settings.model,
        "output_modalities": ["text"],
        "instructions": settings.instructions,
        "audio": {
            "input": {
                "format": settings.input_format.public(),
                "transcription": None,
                "noise_reduction": settings.noise_reduction,
                "turn_detection": None,
            }
        },
        "include": None,
        "max_output_tokens": settings.max_output_tokens,
        "tools": [],
        "tool_choice": "auto",
        "tracing": settings.tracing,
        "truncation": truncation,
        "prompt": None,
        "streamer": {**settings.streamer.public(), **resolved},
    }


_SESSION_KEYS = (
    "type", "model", "instructions", "output_modalities", "audio", "max_output_tokens", "tools",
    "tool_choice", "tracing", "truncation", "include", "prompt", "reasoning", "parallel_tool_calls",
    "streamer", "expires_at", "id", "object",
)  # fmt: skip


def apply_session_update(
    current: SessionSettings, payload: Any, limits: ServeLimits, opened: bool
) -> SessionSettings:
    """``current`` with a ``session.update``'s ``session`` applied (all or nothing).

    ``opened``: the engine session exists, so settings fixed at its creation (streamer's setup
    fields, the retention ratio) can no longer change.
    """
    s = _obj(payload, "session")
    check_keys(s, _SESSION_KEYS, "session")
    out = current
    kind = s.get("type", "realtime")
    if kind != "realtime":
        if kind == "transcription":
            raise _unsupported("session.type", "transcription sessions are not supported; use 'realtime'")
        raise RealtimeError("session.type must be 'realtime'", "invalid_value", "session.type")
    if "model" in s and s["model"] is not None:
        out = dataclasses.replace(out, model=_str(s["model"], "session.model", 256))
    if "instructions" in s and s["instructions"] is not None:
        instructions = _str(s["instructions"], "session.instructions", limits.max_text_chars)
        out = dataclasses.replace(out, instructions=instructions)
    if s.get("output_modalities") is not None:
        _check_modalities(s["output_modalities"], "session.output_modalities")
    if s.get("audio") is not None:
        out = _apply_audio(out, _obj(s["audio"], "session.audio"), limits)
    if "max_output_tokens" in s and s["max_output_tokens"] is not None:
        value = _max_tokens(s["max_output_tokens"], "session.max_output_tokens", limits)
        out = dataclasses.replace(out, max_output_tokens=value)
    _check_no_tools(s, "session")
    if s.get("prompt") is not None:
        raise _unsupported("session.prompt", "stored prompt templates are not supported")
    if s.get("reasoning") is not None:
        raise _unsupported("session.reasoning", "reasoning settings are not supported")
    if "tracing" in s:
        out = dataclasses.replace(out, tracing=s["tracing"])
    if s.get("include") is not None and not isinstance(s["include"], list):
        raise RealtimeError("session.include must be a list", "invalid_type", "session.include")
    if s.get("parallel_tool_calls") is not None and not isinstance(s["parallel_tool_calls"], bool):
        raise RealtimeError(
            "session.parallel_tool_calls must be a boolean", "invalid_type", "session.parallel_tool_calls"
        )
    if s.get("truncation") is not None:
        out = _apply_truncation(out, s["truncation"], opened)
    if s.get("streamer") is not None:
        out = dataclasses.replace(
            out, streamer=_streamer_options(out.streamer, s["streamer"], limits, opened)
        )
    return out


def _check_modalities(value: Any, param: str) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RealtimeError(f"{param} must be a list of strings", "invalid_type", param)
    if "audio" in value:
        raise _unsupported(param, 'audio output is not supported; use ["text"]')
    if value != ["text"]:
        raise RealtimeError(f'{param} must be ["text"]', "invalid_value", param)


def _check_no_tools(obj: dict[str, Any], where: str) -> None:
    tools = obj.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise RealtimeError(f"{where}.tools must be a list", "invalid_type", f"{where}.tools")
        if tools:
            raise _unsupported(f"{where}.tools", "function calling is not supported")
    choice = obj.get("tool_choice")
    if choice is not None and choice not in ("auto", "none"):
        raise _unsupported(f"{where}.tool_choice", "function calling is not supported")


def _max_tokens(value: Any, param: str, limits: ServeLimits) -> int | str:
    if value == "inf":
        return "inf"
    return _int(value, param, 1, limits.max_new_tokens)


def _apply_audio(out: SessionSettings, audio: dict[str, Any], limits: ServeLimits) -> SessionSettings:
    check_keys(audio, ("input", "output"), "session.audio")
    if audio.get("output") is not None:
        _obj(audio["output"], "session.audio.output")  # voice, speed, format: no audio output, no effect
    if audio.get("input") is None:
        return out
    inp = _obj(audio["input"], "session.audio.input")
    check_keys(inp, ("format", "transcription", "noise_reduction", "turn_detection"), "session.audio.input")
    if inp.get("turn_detection") is not None:
        raise _unsupported(
            "session.audio.input.turn_detection",
            "server VAD is not supported; set it to null and commit the input audio buffer",
        )
    if inp.get("transcription") is not None:
        raise _unsupported("session.audio.input.transcription", "input audio transcription is not supported")
    if "noise_reduction" in inp:
        nr = inp["noise_reduction"]
        out = dataclasses.replace(
            out, noise_reduction=None if nr is None else _obj(nr, "session.audio.input.noise_reduction")
        )
    if inp.get("format") is not None:
        out = dataclasses.replace(out, input_format=_audio_format(inp["format"], limits))
    return out


def _audio_format(value: Any, limits: ServeLimits) -> AudioFormat:
    param = "session.audio.input.format"
    fmt = _obj(value, param)
    check_keys(fmt, ("type", "rate"), param)
    kind = _str(fmt.get("type", "audio/pcm"), f"{param}.type")
    if kind == "audio/pcm":
        rate = fmt.get("rate", _PCM_RATE)
        low, high = limits.min_sample_rate, limits.max_sample_rate
        return AudioFormat(kind, _int(rate, f"{param}.rate", low, high))
    if kind in ("audio/pcmu", "audio/pcma"):
        if fmt.get("rate", G711_RATE) != G711_RATE:
            raise RealtimeError(f"{kind} is sent at {G711_RATE} Hz", "invalid_value", f"{param}.rate")
        return AudioFormat(kind, G711_RATE)
    raise RealtimeError(
        f"{param}.type must be audio/pcm, audio/pcmu or audio/pcma", "invalid_value", f"{param}.type"
    )


def _apply_truncation(out: SessionSettings, value: Any, opened: bool) -> SessionSettings:
    param = "session.truncation"
    if value == "auto":
        ratio = None
    elif value == "disabled":
        raise _unsupported(param, "streamer sessions are unbounded: old context is always evicted")
    else:
        t = _obj(value, param)
        check_keys(t, ("type", "retention_ratio", "token_limits"), param)
        if t.get("type") != "retention_ratio":
            raise RealtimeError(f"{param}.type must be retention_ratio", "invalid_value", f"{param}.type")
        ratio = _num(t.get("retention_ratio"), f"{param}.retention_ratio", 0.1, 1.0)
        if t.get("token_limits") is not None:
            raise _unsupported(f"{param}.token_limits", "use session.streamer.max_context_tokens")
    if opened and ratio != out.retention_ratio:
        raise RealtimeError(f"{param} can only be set before the first input", "invalid_value", param)
    return dataclasses.replace(out, retention_ratio=ratio)


def _streamer_options(
    current: StreamerOptions, value: Any, limits: ServeLimits, opened: bool
) -> StreamerOptions:
    param = "session.streamer"
    ext = _obj(value, param)
    names = tuple(f.name for f in dataclasses.fields(StreamerOptions))
    check_keys(ext, names, param)
    changes: dict[str, Any] = {}
    for name, raw in ext.items():
        p = f"{param}.{name}"
        if raw is None:
            if name in ("fps", "stats", "default_question"):
                raise RealtimeError(f"{p} must not be null", "invalid_type", p)
            changes[name] = None
        elif name == "fps":
            changes[name] = _num(raw, p, 1e-3, limits.max_fps)
        elif name == "max_context_tokens":
            changes[name] = _int(raw, p, 1, limits.max_context_tokens or 1 << 24)
        elif name == "frame_soft_tokens":
            if raw not in (70, 140, 280, 560, 1120) or isinstance(raw, bool):
                raise RealtimeError(f"{p} must be 70, 140, 280, 560 or 1120", "invalid_value", p)
            changes[name] = raw
        elif name == "audio_segment_s":
            changes[name] = _num(raw, p, 0.04, 30.0)
        elif name == "temperature":
            changes[name] = _num(raw, p, 0.0, 100.0)
        elif name == "top_k":
            changes[name] = _int(raw, p, 0, 1 << 24)
        elif name == "top_p":
            changes[name] = _num(raw, p, 1e-6, 1.0)
        elif name == "seed":
            changes[name] = _int(raw, p, 0, 2**63 - 1)
        elif name == "stats":
            if not isinstance(raw, bool):
                raise RealtimeError(f"{p} must be a boolean", "invalid_type", p)
            changes[name] = raw
        else:  # default_question
            changes[name] = _str(raw, p, limits.max_question_chars)
            if not raw.strip():
                raise RealtimeError(f"{p} must not be empty", "invalid_value", p)
    for name in StreamerOptions.SETUP_FIELDS:
        if opened and name in changes and changes[name] != getattr(current, name):
            raise RealtimeError(
                f"{param}.{name} can only be set before the first input", "invalid_value", f"{param}.{name}"
            )
    return dataclasses.replace(current, **changes)


# ---- conversation items ------------------------------------------------------------------------


@dataclass(frozen=True)
class ImagePart:
    format: str  # jpeg | png | webp
    data: bytes  # the encoded picture
    param: str  # where it was, for errors


@dataclass(frozen=True)
class AudioPart:
    data: bytes  # PCM in the session's input format
    param: str


@dataclass(frozen=True)
class ParsedItem:
    """A ``message`` item to add: its role, its parts in order, and the item as it is echoed back."""

    id: str
    role: str  # user | system | assistant
    parts: list[str | ImagePart | AudioPart]  # text parts are str
    public: dict[str, Any]  # the item for conversation.item.added/done (media data left out)

    @property
    def text(self) -> str:
        return "\n".join(p for p in self.parts if isinstance(p, str))


_CONTENT_TYPES = {
    "user": ("input_text", "input_image", "input_audio"),
    "system": ("input_text",),
    "assistant": ("output_text", "text"),
}


def parse_item(value: Any, limits: ServeLimits) -> ParsedItem:
    """A ``conversation.item.create``'s ``item``; only ``message`` items (no function calls)."""
    item = _obj(value, "item")
    kind = item.get("type", "message")
    if kind != "message":
        if isinstance(kind, str) and (kind.startswith("function_call") or kind.startswith("mcp")):
            raise _unsupported("item.type", f"{kind} items are not supported (no function calling)")
        raise RealtimeError("item.type must be 'message'", "invalid_value", "item.type")
    check_keys(item, ("id", "type", "object", "status", "role", "content"), "item")
    item_id = item.get("id")
    item_id = new_id("item") if item_id is None else _str(item_id, "item.id", 128)
    role = item.get("role")
    if role not in _CONTENT_TYPES:
        raise RealtimeError("item.role must be user, system or assistant", "invalid_value", "item.role")
    content = item.get("content")
    if not isinstance(content, list) or not content:
        raise RealtimeError("item.content must be a non-empty list", "invalid_value", "item.content")
    parts: list[str | ImagePart | AudioPart] = []
    public: list[dict[str, Any]] = []
    chars = 0
    for i, raw in enumerate(content):
        p = f"item.content[{i}]"
        c = _obj(raw, p)
        ctype = c.get("type")
        if ctype == "output_audio" or (ctype == "input_audio" and role != "user"):
            raise _unsupported(f"{p}.type", "audio output is not supported")
        if ctype not in _CONTENT_TYPES[role]:
            allowed = ", ".join(_CONTENT_TYPES[role])
            raise RealtimeError(
                f"{p}.type must be one of {allowed} for a {role} item", "invalid_value", f"{p}.type"
            )
        if ctype in ("input_text", "output_text", "text"):
            check_keys(c, ("type", "text"), p)
            text = _str(c.get("text"), f"{p}.text", limits.max_text_chars)
            chars += len(text)
            parts.append(text)
            public.append({"type": ctype, "text": text})
        elif ctype == "input_image":
            check_keys(c, ("type", "image_url", "detail"), p)
            fmt, data = decode_data_url(c.get("image_url"), f"{p}.image_url")
            parts.append(ImagePart(fmt, data, f"{p}.image_url"))
            public.append({"type": "input_image", "detail": c.get("detail", "auto")})
        else:  # input_audio
            check_keys(c, ("type", "audio", "transcript"), p)
            parts.append(AudioPart(decode_base64(c.get("audio"), f"{p}.audio"), f"{p}.audio"))
            public.append({"type": "input_audio", "transcript": None})
    if chars > limits.max_text_chars:
        raise RealtimeError(
            f"item text is longer than {limits.max_text_chars} characters",
            "string_above_max_length",
            "item.content",
        )
    echoed = {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": "completed",
        "role": role,
        "content": public,
    }
    return ParsedItem(item_id, role, parts, echoed)


# ---- responses ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResponseParams:
    """A ``response.create``'s ``response`` (None: the session's value)."""

    instructions: str | None = None
    max_output_tokens: int | str | None = None  # tokens or "inf"
    metadata: dict[str, Any] | None = None  # echoed
    choices: tuple[str, ...] = ()  # streamer: the answer is exactly one of these
    temperature: float | None = None  # streamer: sampling overrides
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None


_RESPONSE_KEYS = (
    "audio", "conversation", "input", "instructions", "max_output_tokens", "metadata", "output_modalities",
    "prompt", "reasoning", "tool_choice", "tools", "parallel_tool_calls", "streamer",
)  # fmt: skip


def parse_response_params(value: Any, limits: ServeLimits) -> ResponseParams:
    """A ``response.create``'s optional ``response`` object."""
    if value is None:
        return ResponseParams()
    r = _obj(value, "response")
    check_keys(r, _RESPONSE_KEYS, "response")
    conversation = r.get("conversation", "auto")
    if conversation not in ("auto", None):
        raise _unsupported(
            "response.conversation",
            "out-of-band responses are not supported (every answer enters the context)",
        )
    if r.get("input") is not None:
        raise _unsupported(
            "response.input", "custom response input is not supported; add items to the conversation"
        )
    if r.get("output_modalities") is not None:
        _check_modalities(r["output_modalities"], "response.output_modalities")
    if r.get("audio") is not None:
        _obj(r["audio"], "response.audio")
    _check_no_tools(r, "response")
    if r.get("prompt") is not None:
        raise _unsupported("response.prompt", "stored prompt templates are not supported")
    if r.get("reasoning") is not None:
        raise _unsupported("response.reasoning", "reasoning settings are not supported")
    out: dict[str, Any] = {}
    if r.get("instructions") is not None:
        out["instructions"] = _str(r["instructions"], "response.instructions", limits.max_text_chars)
    if r.get("max_output_tokens") is not None:
        out["max_output_tokens"] = _max_tokens(r["max_output_tokens"], "response.max_output_tokens", limits)
    if r.get("metadata") is not None:
        out["metadata"] = _obj(r["metadata"], "response.metadata")
    if r.get("streamer") is not None:
        out.update(_response_extension(r["streamer"], limits))
    return ResponseParams(**out)


def _response_extension(value: Any, limits: ServeLimits) -> dict[str, Any]:
    param = "response.streamer"
    ext = _obj(value, param)
    check_keys(ext, ("choices", "temperature", "top_k", "top_p", "seed"), param)
    out: dict[str, Any] = {}
    if ext.get("choices") is not None:
        choices = ext["choices"]
        if (
            not isinstance(choices, list)
            or not choices
            or not all(isinstance(c, str) and c.strip() for c in choices)
        ):
            raise RealtimeError(
                f"{param}.choices must be a non-empty list of non-empty strings",
                "invalid_value",
                f"{param}.choices",
            )
        if len(choices) > 1024 or any(len(c) > 1024 for c in choices):
            raise RealtimeError(
                f"{param}.choices: at most 1024 choices of 1024 characters",
                "invalid_value",
                f"{param}.choices",
            )
        out["choices"] = tuple(choices)
    checks = {
        "temperature": lambda v, p: _num(v, p, 0.0, 100.0),
        "top_k": lambda v, p: _int(v, p, 0, 1 << 24),
        "top_p": lambda v, p: _num(v, p, 1e-6, 1.0),
        "seed": lambda v, p: _int(v, p, 0, 2**63 - 1),
    }
    for name, check in checks.items():
        if ext.get(name) is not None:
            out[name] = check(ext[name], f"{param}.{name}")
    return out


def assistant_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    """The assistant ``message`` item of a response (``status``: in_progress, completed, incomplete)."""
    content = [] if status == "in_progress" else [{"type": "output_text", "text": text}]
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


# engine finish reason → (response status, status_details)
_STATUS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "stop": ("completed", None),
    "choice": ("completed", None),
    "length": ("incomplete", {"type": "incomplete", "reason": "max_output_tokens"}),
    "cancelled": ("cancelled", {"type": "cancelled", "reason": "client_cancelled"}),
}


def response_status(
    finish_reason: str, error_code: str | None, error_message: str | None
) -> tuple[str, dict[str, Any] | None]:
    """(status, status_details) of a response whose answer ended with ``finish_reason``."""
    if finish_reason in _STATUS:
        return _STATUS[finish_reason]
    code = error_code or ("session_closed" if finish_reason == "closed" else "internal")
    message = error_message or (
        "the session was closed" if finish_reason == "closed" else "the answer failed"
    )
    return "failed", {
        "type": "failed",
        "error": {"type": error_type_of(code), "code": code, "message": message},
    }


def error_type_of(code: str) -> str:
    """OpenAI's error ``type`` for a streamer code: server faults vs the client's requests."""
    return "server_error" if code in ("internal", "model_error", "unavailable") else "invalid_request_error"


def response_object(
    response_id: str,
    status: str,
    max_output_tokens: int | str,
    *,
    output: list[dict[str, Any]] | None = None,
    status_details: dict[str, Any] | None = None,
    usage: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    conversation_id: str | None = None,
    extension: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The GA ``realtime.response`` object (``response.created`` / ``response.done``)."""
    body: dict[str, Any] = {
        "id": response_id,
        "object": "realtime.response",
        "status": status,
        "status_details": status_details,
        "output": output or [],
        "conversation_id": conversation_id,
        "output_modalities": ["text"],
        "max_output_tokens": max_output_tokens,
        "metadata": metadata,
        "usage": usage,
    }
    if extension is not None:
        body["streamer"] = extension
    return body


def usage_object(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    """``usage`` of a response; ``input_tokens`` is the context the answer saw (media included).

    No input breakdown is given: streamer keeps one unified sequence and does not count its
    text, image and audio tokens apart.
    """
    return {
        "total_tokens": input_tokens + output_tokens,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "output_token_details": {"text_tokens": output_tokens, "audio_tokens": 0},
    }
