"""The ``realtime.session`` of /v1/realtime: its settings, ``session.update`` applied, the object shown.

:class:`SessionSettings` is frozen: :func:`apply_session_update` returns a new one or raises
:class:`~streamer.serve.realtime_events.RealtimeError` naming the field, so a refused update
changes nothing. Settings that shape the engine session (streamer's setup fields, the retention
ratio) are fixed once it exists; everything else may change at any time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from streamer.media.g711 import G711_RATE
from streamer.serve.limits import ServeLimits
from streamer.serve.realtime_events import (
    RealtimeError,
    as_int,
    as_number,
    as_object,
    as_str,
    check_keys,
    check_modalities,
    check_no_tools,
    max_tokens_value,
    unsupported,
)

__all__ = [
    "DEFAULT_QUESTION",
    "AudioFormat",
    "SessionSettings",
    "StreamerOptions",
    "apply_session_update",
    "session_object",
]

DEFAULT_QUESTION = "Respond to the latest input."  # asked when the latest user turn has no text
_PCM_RATE = 24_000  # Hz, OpenAI's audio/pcm rate (the default here; other rates are streamer's extension)


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
    s = as_object(payload, "session")
    check_keys(s, _SESSION_KEYS, "session")
    out = current
    kind = s.get("type", "realtime")
    if kind != "realtime":
        if kind == "transcription":
            raise unsupported("session.type", "transcription sessions are not supported; use 'realtime'")
        raise RealtimeError("session.type must be 'realtime'", "invalid_value", "session.type")
    if "model" in s and s["model"] is not None:
        out = dataclasses.replace(out, model=as_str(s["model"], "session.model", 256))
    if "instructions" in s and s["instructions"] is not None:
        instructions = as_str(s["instructions"], "session.instructions", limits.max_text_chars)
        out = dataclasses.replace(out, instructions=instructions)
    if s.get("output_modalities") is not None:
        check_modalities(s["output_modalities"], "session.output_modalities")
    if s.get("audio") is not None:
        out = _apply_audio(out, as_object(s["audio"], "session.audio"), limits)
    if "max_output_tokens" in s and s["max_output_tokens"] is not None:
        value = max_tokens_value(s["max_output_tokens"], "session.max_output_tokens", limits)
        out = dataclasses.replace(out, max_output_tokens=value)
    check_no_tools(s, "session")
    if s.get("prompt") is not None:
        raise unsupported("session.prompt", "stored prompt templates are not supported")
    if s.get("reasoning") is not None:
        raise unsupported("session.reasoning", "reasoning settings are not supported")
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


def _apply_audio(out: SessionSettings, audio: dict[str, Any], limits: ServeLimits) -> SessionSettings:
    check_keys(audio, ("input", "output"), "session.audio")
    if audio.get("output") is not None:
        as_object(audio["output"], "session.audio.output")  # voice, speed, format: no audio output, no effect
    if audio.get("input") is None:
        return out
    inp = as_object(audio["input"], "session.audio.input")
    check_keys(inp, ("format", "transcription", "noise_reduction", "turn_detection"), "session.audio.input")
    if inp.get("turn_detection") is not None:
        raise unsupported(
            "session.audio.input.turn_detection",
            "server VAD is not supported; set it to null and commit the input audio buffer",
        )
    if inp.get("transcription") is not None:
        raise unsupported("session.audio.input.transcription", "input audio transcription is not supported")
    if "noise_reduction" in inp:
        nr = inp["noise_reduction"]
        out = dataclasses.replace(
            out, noise_reduction=None if nr is None else as_object(nr, "session.audio.input.noise_reduction")
        )
    if inp.get("format") is not None:
        out = dataclasses.replace(out, input_format=_audio_format(inp["format"], limits))
    return out


def _audio_format(value: Any, limits: ServeLimits) -> AudioFormat:
    param = "session.audio.input.format"
    fmt = as_object(value, param)
    check_keys(fmt, ("type", "rate"), param)
    kind = as_str(fmt.get("type", "audio/pcm"), f"{param}.type")
    if kind == "audio/pcm":
        rate = fmt.get("rate", _PCM_RATE)
        low, high = limits.min_sample_rate, limits.max_sample_rate
        return AudioFormat(kind, as_int(rate, f"{param}.rate", low, high))
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
        raise unsupported(param, "streamer sessions are unbounded: old context is always evicted")
    else:
        t = as_object(value, param)
        check_keys(t, ("type", "retention_ratio", "token_limits"), param)
        if t.get("type") != "retention_ratio":
            raise RealtimeError(f"{param}.type must be retention_ratio", "invalid_value", f"{param}.type")
        ratio = as_number(t.get("retention_ratio"), f"{param}.retention_ratio", 0.1, 1.0)
        if t.get("token_limits") is not None:
            raise unsupported(f"{param}.token_limits", "use session.streamer.max_context_tokens")
    if opened and ratio != out.retention_ratio:
        raise RealtimeError(f"{param} can only be set before the first input", "invalid_value", param)
    return dataclasses.replace(out, retention_ratio=ratio)


def _streamer_options(
    current: StreamerOptions, value: Any, limits: ServeLimits, opened: bool
) -> StreamerOptions:
    param = "session.streamer"
    ext = as_object(value, param)
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
            changes[name] = as_number(raw, p, 1e-3, limits.max_fps)
        elif name == "max_context_tokens":
            changes[name] = as_int(raw, p, 1, limits.max_context_tokens or 1 << 24)
        elif name == "frame_soft_tokens":
            if raw not in (70, 140, 280, 560, 1120) or isinstance(raw, bool):
                raise RealtimeError(f"{p} must be 70, 140, 280, 560 or 1120", "invalid_value", p)
            changes[name] = raw
        elif name == "audio_segment_s":
            changes[name] = as_number(raw, p, 0.04, 30.0)
        elif name == "temperature":
            changes[name] = as_number(raw, p, 0.0, 100.0)
        elif name == "top_k":
            changes[name] = as_int(raw, p, 0, 1 << 24)
        elif name == "top_p":
            changes[name] = as_number(raw, p, 1e-6, 1.0)
        elif name == "seed":
            changes[name] = as_int(raw, p, 0, 2**63 - 1)
        elif name == "stats":
            if not isinstance(raw, bool):
                raise RealtimeError(f"{p} must be a boolean", "invalid_type", p)
            changes[name] = raw
        else:  # default_question
            changes[name] = as_str(raw, p, limits.max_question_chars)
            if not raw.strip():
                raise RealtimeError(f"{p} must not be empty", "invalid_value", p)
    for name in StreamerOptions.SETUP_FIELDS:
        if opened and name in changes and changes[name] != getattr(current, name):
            raise RealtimeError(
                f"{param}.{name} can only be set before the first input", "invalid_value", f"{param}.{name}"
            )
    return dataclasses.replace(current, **changes)
