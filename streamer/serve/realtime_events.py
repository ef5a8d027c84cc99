"""OpenAI Realtime (GA) events as plain dicts: the client events /v1/realtime reads, the server events it writes.

Pure functions and dataclasses, no state and no I/O; :mod:`streamer.serve.realtime` holds the
state machine and :mod:`streamer.serve.realtime_session` the session's settings. Client events are checked here field by field: anything streamer cannot honour
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
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from streamer.errors import ProtocolError
from streamer.serve.limits import ServeLimits

__all__ = [
    "ACCEPTED_WITHOUT_EFFECT",
    "CLIENT_EVENTS",
    "ImagePart",
    "OpenResponse",
    "UNSUPPORTED_EVENTS",
    "AudioPart",
    "ParsedItem",
    "RealtimeError",
    "ResponseParams",
    "as_int",
    "as_number",
    "as_object",
    "as_str",
    "check_keys",
    "check_modalities",
    "check_no_tools",
    "max_tokens_value",
    "unsupported",
    "assistant_item",
    "error_type_of",
    "response_object",
    "response_finished",
    "response_started",
    "response_status",
    "usage_object",
    "user_audio_item",
    "decode_base64",
    "decode_data_url",
    "error_event",
    "event",
    "new_id",
    "parse_item",
    "parse_response_params",
]

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

# Client events refused with an error (why, as the message says).
UNSUPPORTED_EVENTS = {
    "conversation.item.delete": "streamer's context is append-only; old items leave it by rolling eviction",
    "conversation.item.truncate": "it truncates audio output, which streamer does not produce",
    "output_audio_buffer.clear": "streamer produces no audio output",
}

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


def unsupported(param: str, what: str) -> RealtimeError:
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


def as_object(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RealtimeError(f"{param} must be an object", "invalid_type", param)
    return value


def as_str(value: Any, param: str, max_chars: int | None = None) -> str:
    if not isinstance(value, str):
        raise RealtimeError(f"{param} must be a string", "invalid_type", param)
    if max_chars is not None and len(value) > max_chars:
        raise RealtimeError(
            f"{param} is longer than {max_chars} characters", "string_above_max_length", param
        )
    return value


def as_int(value: Any, param: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RealtimeError(f"{param} must be an integer", "invalid_type", param)
    if not low <= value <= high:
        raise RealtimeError(f"{param} must be in [{low}, {high}], got {value}", "invalid_value", param)
    return value


def as_number(value: Any, param: str, low: float, high: float) -> float:
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
    text = as_str(value, param)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RealtimeError(f"{param} is not valid base64", "invalid_value", param) from None


def decode_data_url(value: Any, param: str) -> tuple[str, bytes]:
    """A ``data:image/...;base64,...`` URL as (format, bytes); no URL is ever fetched."""
    text = as_str(value, param)
    match = _DATA_URL.fullmatch(text)
    if match is None:
        if text.startswith(("http://", "https://", "file:")):
            raise unsupported(param, "only data: URLs are accepted (streamer fetches nothing)")
        raise RealtimeError(f"{param} must be a data:image/...;base64,... URL", "invalid_value", param)
    fmt = _IMAGE_MIME.get(match["mime"].lower())
    if fmt is None:
        raise RealtimeError(
            f"{param}: image type {match['mime']} is not supported (jpeg, png, webp)", "invalid_value", param
        )
    return fmt, decode_base64(match["data"], param)


# ---- shared by session and response checks ------------------------------------------------


def check_modalities(value: Any, param: str) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RealtimeError(f"{param} must be a list of strings", "invalid_type", param)
    if "audio" in value:
        raise unsupported(param, 'audio output is not supported; use ["text"]')
    if value != ["text"]:
        raise RealtimeError(f'{param} must be ["text"]', "invalid_value", param)


def check_no_tools(obj: dict[str, Any], where: str) -> None:
    tools = obj.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise RealtimeError(f"{where}.tools must be a list", "invalid_type", f"{where}.tools")
        if tools:
            raise unsupported(f"{where}.tools", "function calling is not supported")
    choice = obj.get("tool_choice")
    if choice is not None and choice not in ("auto", "none"):
        raise unsupported(f"{where}.tool_choice", "function calling is not supported")


def max_tokens_value(value: Any, param: str, limits: ServeLimits) -> int | str:
    if value == "inf":
        return "inf"
    return as_int(value, param, 1, limits.max_new_tokens)


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
    item = as_object(value, "item")
    kind = item.get("type", "message")
    if kind != "message":
        if isinstance(kind, str) and (kind.startswith("function_call") or kind.startswith("mcp")):
            raise unsupported("item.type", f"{kind} items are not supported (no function calling)")
        raise RealtimeError("item.type must be 'message'", "invalid_value", "item.type")
    check_keys(item, ("id", "type", "object", "status", "role", "content"), "item")
    item_id = item.get("id")
    item_id = new_id("item") if item_id is None else as_str(item_id, "item.id", 128)
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
        c = as_object(raw, p)
        ctype = c.get("type")
        if ctype == "output_audio" or (ctype == "input_audio" and role != "user"):
            raise unsupported(f"{p}.type", "audio output is not supported")
        if ctype not in _CONTENT_TYPES[role]:
            allowed = ", ".join(_CONTENT_TYPES[role])
            raise RealtimeError(
                f"{p}.type must be one of {allowed} for a {role} item", "invalid_value", f"{p}.type"
            )
        if ctype in ("input_text", "output_text", "text"):
            check_keys(c, ("type", "text"), p)
            text = as_str(c.get("text"), f"{p}.text", limits.max_text_chars)
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


def user_audio_item(item_id: str) -> dict[str, Any]:
    """The user message item a committed input audio buffer becomes (no transcript: none is made)."""
    content = [{"type": "input_audio", "transcript": None}]
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": "completed",
        "role": "user",
        "content": content,
    }


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
    r = as_object(value, "response")
    check_keys(r, _RESPONSE_KEYS, "response")
    conversation = r.get("conversation", "auto")
    if conversation not in ("auto", None):
        raise unsupported(
            "response.conversation",
            "out-of-band responses are not supported (every answer enters the context)",
        )
    if r.get("input") is not None:
        raise unsupported(
            "response.input", "custom response input is not supported; add items to the conversation"
        )
    if r.get("output_modalities") is not None:
        check_modalities(r["output_modalities"], "response.output_modalities")
    if r.get("audio") is not None:
        as_object(r["audio"], "response.audio")
    check_no_tools(r, "response")
    if r.get("prompt") is not None:
        raise unsupported("response.prompt", "stored prompt templates are not supported")
    if r.get("reasoning") is not None:
        raise unsupported("response.reasoning", "reasoning settings are not supported")
    out: dict[str, Any] = {}
    if r.get("instructions") is not None:
        out["instructions"] = as_str(r["instructions"], "response.instructions", limits.max_text_chars)
    if r.get("max_output_tokens") is not None:
        out["max_output_tokens"] = max_tokens_value(
            r["max_output_tokens"], "response.max_output_tokens", limits
        )
    if r.get("metadata") is not None:
        out["metadata"] = as_object(r["metadata"], "response.metadata")
    if r.get("streamer") is not None:
        out.update(_response_extension(r["streamer"], limits))
    return ResponseParams(**out)


def _response_extension(value: Any, limits: ServeLimits) -> dict[str, Any]:
    param = "response.streamer"
    ext = as_object(value, param)
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
        "temperature": lambda v, p: as_number(v, p, 0.0, 100.0),
        "top_k": lambda v, p: as_int(v, p, 0, 1 << 24),
        "top_p": lambda v, p: as_number(v, p, 1e-6, 1.0),
        "seed": lambda v, p: as_int(v, p, 0, 2**63 - 1),
    }
    for name, check in checks.items():
        if ext.get(name) is not None:
            out[name] = check(ext[name], f"{param}.{name}")
    return out


@dataclass
class OpenResponse:
    """The response being generated: its ids, its settings and the text streamed so far."""

    id: str
    item_id: str  # the assistant message item
    previous_item_id: str | None  # the item before it in the conversation
    max_output_tokens: int | str  # tokens or "inf"
    metadata: dict[str, Any] | None  # echoed
    text: list[str] = field(default_factory=list)  # the deltas sent so far

    def where(self) -> dict[str, Any]:
        return {"response_id": self.id, "item_id": self.item_id, "output_index": 0, "content_index": 0}

    def delta(self, text: str) -> dict[str, Any]:
        """``response.output_text.delta`` for new text (remembered for the done events)."""
        self.text.append(text)
        return event("response.output_text.delta", **self.where(), delta=text)


def response_started(r: OpenResponse) -> list[dict[str, Any]]:
    """The events that open a response, in OpenAI's order."""
    pending = assistant_item(r.item_id, "", "in_progress")
    body = response_object(r.id, "in_progress", r.max_output_tokens, metadata=r.metadata)
    return [
        event("response.created", response=body),
        event("response.output_item.added", response_id=r.id, output_index=0, item=pending),
        event("conversation.item.added", previous_item_id=r.previous_item_id, item=pending),
        event("response.content_part.added", **r.where(), part={"type": "text", "text": ""}),
    ]


def response_finished(
    r: OpenResponse,
    status: str,
    details: dict[str, Any] | None,
    input_tokens: int,
    output_tokens: int,
    extension: dict[str, Any],
) -> list[dict[str, Any]]:
    """The events that close a response, ``response.done`` last (its output item is the assistant's)."""
    text = "".join(r.text)
    item = assistant_item(r.item_id, text, "completed" if status == "completed" else "incomplete")
    body = response_object(
        r.id,
        status,
        r.max_output_tokens,
        output=[item],
        status_details=details,
        usage=usage_object(input_tokens, output_tokens),
        metadata=r.metadata,
        extension=extension,
    )
    return [
        event("response.output_text.done", **r.where(), text=text),
        event("response.content_part.done", **r.where(), part={"type": "text", "text": text}),
        event("response.output_item.done", response_id=r.id, output_index=0, item=item),
        event("conversation.item.done", previous_item_id=r.previous_item_id, item=item),
        event("response.done", response=body),
    ]


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
