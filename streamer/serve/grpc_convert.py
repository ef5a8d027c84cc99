"""Protobuf ↔ the transport-neutral messages of :mod:`streamer.serve.messages`, one to one.

Pure functions, no I/O: :func:`client_message` turns a ``LiveRequest`` into the
:mod:`~streamer.serve.messages` dataclass the protocol core takes (a field left unset becomes
``None``, so the core applies the same defaults as for a WebSocket client) and
:func:`live_response` turns a server message into a ``LiveResponse``. Field names are the same on
both sides; the enums map to the strings the messages carry. :func:`sampling` and
:func:`pcm_format` are shared with the stateless ``Ask`` call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message

from streamer.errors import ProtocolError
from streamer.media.image import image_format
from streamer.serve import messages as m
from streamer.serve.proto.streamer.v1 import streamer_pb2 as pb

__all__ = [
    "FINISH_REASONS",
    "client_message",
    "finish_reason",
    "image_format_name",
    "live_response",
    "pcm_format",
    "sampling",
]

_IMAGE_FORMATS = {
    pb.IMAGE_FORMAT_JPEG: "jpeg",
    pb.IMAGE_FORMAT_PNG: "png",
    pb.IMAGE_FORMAT_WEBP: "webp",
    pb.IMAGE_FORMAT_RGB: "rgb",
}
_PCM_FORMATS = {
    pb.PCM_FORMAT_UNSPECIFIED: "s16le",
    pb.PCM_FORMAT_S16LE: "s16le",
    pb.PCM_FORMAT_F32LE: "f32le",
}
FINISH_REASONS = {
    "stop": pb.FINISH_REASON_STOP,
    "length": pb.FINISH_REASON_LENGTH,
    "choice": pb.FINISH_REASON_CHOICE,
    "cancelled": pb.FINISH_REASON_CANCELLED,
    "closed": pb.FINISH_REASON_CLOSED,
    "error": pb.FINISH_REASON_ERROR,
}


def _opt(msg: Message, name: str) -> Any:
    """A proto3 ``optional`` field's value, or None when unset."""
    return getattr(msg, name) if msg.HasField(name) else None


def sampling(msg: pb.SamplingParams) -> m.Sampling:
    return m.Sampling(
        max_new_tokens=_opt(msg, "max_new_tokens"),
        temperature=_opt(msg, "temperature"),
        top_k=_opt(msg, "top_k"),
        top_p=_opt(msg, "top_p"),
        seed=_opt(msg, "seed"),
    )


def image_format_name(frame: pb.Frame) -> str:
    """``jpeg`` / ``png`` / ``webp`` / ``rgb``; UNSPECIFIED is told from the bytes (rgb with a size)."""
    if frame.format != pb.IMAGE_FORMAT_UNSPECIFIED:
        name = _IMAGE_FORMATS.get(frame.format)
        if name is None:
            raise ProtocolError(f"unknown image format {frame.format}", "bad_message")
        return name
    if frame.width and frame.height:
        return "rgb"
    return image_format(frame.data) or "jpeg"  # an unknown format is refused by the decoder


def pcm_format(audio: pb.Audio) -> str:
    name = _PCM_FORMATS.get(audio.format)
    if name is None:
        raise ProtocolError(f"unknown PCM format {audio.format}", "bad_message")
    return name


def finish_reason(name: str) -> pb.FinishReason:
    return FINISH_REASONS.get(name, pb.FINISH_REASON_UNSPECIFIED)


def client_message(req: pb.LiveRequest) -> m.ClientMessage:
    """The transport-neutral form of one ``LiveRequest`` (ProtocolError ``bad_message`` if empty)."""
    seq = _opt(req, "seq")
    kind = req.WhichOneof("message")
    try:
        return _CLIENT[kind](getattr(req, kind), seq) if kind is not None else _empty(seq)
    except ProtocolError as exc:
        exc.seq = seq if exc.seq is None else exc.seq
        raise


def _empty(seq: int | None) -> m.ClientMessage:
    raise ProtocolError("a LiveRequest must set one of its messages", "bad_message", seq)


def _setup(msg: pb.Setup, seq: int | None) -> m.Setup:
    return m.Setup(
        seq=seq,
        system_prompt=_opt(msg, "system_prompt"),
        max_context_tokens=_opt(msg, "max_context_tokens"),
        evict_to_fraction=_opt(msg, "evict_to_fraction"),
        frame_soft_tokens=_opt(msg, "frame_soft_tokens"),
        audio_segment_s=_opt(msg, "audio_segment_s"),
        fps=_opt(msg, "fps"),
        sampling=sampling(msg.sampling) if msg.HasField("sampling") else None,
    )


def _frame(msg: pb.Frame, seq: int | None) -> m.Frame:
    return m.Frame(
        data=msg.data,
        format=image_format_name(msg),
        width=msg.width or None,
        height=msg.height or None,
        t_s=_opt(msg, "t_s"),
        seq=seq,
    )


def _audio(msg: pb.Audio, seq: int | None) -> m.Audio:
    return m.Audio(
        data=msg.data,
        format=pcm_format(msg),
        sample_rate=msg.sample_rate or 16_000,
        channels=msg.channels or 1,
        t_s=_opt(msg, "t_s"),
        seq=seq,
    )


def _text(msg: pb.Text, seq: int | None) -> m.Text:
    return m.Text(text=msg.text, role=msg.role or "user", seq=seq)


def _ask(msg: pb.Question, seq: int | None) -> m.AskMsg:
    return m.AskMsg(
        question=msg.question,
        choices=tuple(msg.choices),
        sampling=sampling(msg.sampling) if msg.HasField("sampling") else None,
        request_id=msg.request_id or None,
        seq=seq,
    )


def _cancel(msg: pb.Cancel, seq: int | None) -> m.CancelMsg:
    return m.CancelMsg(request_id=msg.request_id or None, seq=seq)


def _close(msg: pb.Close, seq: int | None) -> m.CloseMsg:
    return m.CloseMsg(seq=seq)


_CLIENT: dict[str, Callable[[Any, int | None], m.ClientMessage]] = {
    "setup": _setup,
    "frame": _frame,
    "audio": _audio,
    "text": _text,
    "ask": _ask,
    "cancel": _cancel,
    "close": _close,
}


# ---- server → client ---------------------------------------------------------------------------

_ONEOF = {
    m.Ready: "ready",
    m.AnswerDelta: "answer_delta",
    m.AnswerDone: "answer_done",
    m.Stats: "stats",
    m.Error: "error",
    m.GoAway: "go_away",
}


def live_response(message: m.ServerMessage) -> pb.LiveResponse:
    """The ``LiveResponse`` carrying one server message (fields copied by name; None stays unset)."""
    name = _ONEOF[type(message)]
    out = pb.LiveResponse()
    target = getattr(out, name)
    target.SetInParent()
    for f in dataclasses.fields(message):
        value = getattr(message, f.name)
        if value is None:
            continue
        if f.name == "finish_reason":
            target.finish_reason = finish_reason(value)
        elif f.name == "limits":
            _fill_limits(target.limits, value)
        elif f.name == "token_ids":
            target.token_ids.extend(value)
        elif f.name in target.DESCRIPTOR.fields_by_name:
            setattr(target, f.name, value)
    return out


def _fill_limits(target: pb.Limits, limits: dict[str, Any]) -> None:
    target.SetInParent()
    fields = target.DESCRIPTOR.fields_by_name
    for key, value in limits.items():
        if key in fields and value is not None:
            setattr(target, key, type(getattr(target, key))(value))
