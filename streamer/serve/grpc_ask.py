"""The stateless ``Ask`` call: pictures (+ audio) and one question in a fresh session, under a deadline.

Call order inside one call: check the request → decode pictures and audio in a worker thread
(never on the event loop) → open a session → push audio and pictures interleaved by time →
ask → await the answer until the call's deadline → close the session (always, also on errors
and cancellation). Past the deadline the answer is cancelled in the engine and the call ends
with DEADLINE_EXCEEDED (code ``deadline_exceeded``), never with late work; a client that goes
away cancels the call, which cancels the answer the same way.

:func:`decode_ask` is Sans-I/O (request → :class:`AskInput`) and unit-tested without a server.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import numpy as np

from streamer.engine.aio import AsyncEngine, AsyncSession
from streamer.engine.collector import AnswerStream
from streamer.engine.protocol import Answer, PushStatus, SamplingParams, SessionConfig
from streamer.errors import InputError, MediaError, ProtocolError, StreamerError
from streamer.media.image import decode_image, rgb_from_bytes
from streamer.media.live import PcmResampler
from streamer.media.types import SAMPLE_RATE, MediaLimits
from streamer.serve import grpc_convert
from streamer.serve.grpc_errors import DEADLINE_EXCEEDED
from streamer.serve.limits import ServeLimits
from streamer.serve.proto.streamer.v1 import streamer_pb2 as pb

__all__ = [
    "AskFailed",
    "AskInput",
    "answer_response",
    "decode_ask",
    "run_ask",
    "sampling_params",
    "timeout_from",
]

_DEADLINE_MARGIN_S = 0.005  # stop this long before the deadline so the reply still arrives in time


class AskFailed(StreamerError):
    """The call ends with the stable ``code`` (e.g. ``deadline_exceeded``, ``queue_full``)."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


@dataclass
class AskInput:
    """A decoded ``AskRequest``: what is pushed into the session, in time order."""

    frames: list[tuple[float, np.ndarray]] = field(default_factory=list)  # (t_s seconds, uint8 [H, W, 3])
    audio: np.ndarray | None = None  # float32 16 kHz mono samples
    audio_t_s: float = 0.0  # seconds of the first audio sample
    question: str = ""
    params: SamplingParams = field(default_factory=SamplingParams)
    config: SessionConfig = field(default_factory=SessionConfig)


def sampling_params(msg: pb.SamplingParams, choices: tuple[str, ...], limits: ServeLimits) -> SamplingParams:
    """Engine sampling from the proto (unset fields: the engine defaults; the server caps tokens)."""
    s = grpc_convert.sampling(msg)
    max_new = s.max_new_tokens if s.max_new_tokens is not None else min(256, limits.max_new_tokens)
    if max_new > limits.max_new_tokens:
        raise InputError(f"max_new_tokens {max_new} is over the server's limit of {limits.max_new_tokens}")
    values = {k: v for k, v in vars(s).items() if v is not None}
    values["max_new_tokens"] = max_new
    return SamplingParams(**values, choices=choices)


def decode_ask(
    request: pb.AskRequest,
    limits: ServeLimits,
    max_images: int,
    context_tokens: int | None = None,
) -> AskInput:
    """Check and decode a request (CPU work: run it off the event loop). InputError / MediaError."""
    if len(request.images) > max_images:
        raise InputError(f"at most {max_images} images per Ask, got {len(request.images)}")
    if len(request.prompt) > limits.max_question_chars:
        raise InputError(f"the prompt is longer than {limits.max_question_chars} characters")
    system = request.system_prompt if request.HasField("system_prompt") else None
    if system is not None and len(system) > limits.max_text_chars:
        raise InputError(f"the system prompt is longer than {limits.max_text_chars} characters")
    media = limits.media_limits()
    out = AskInput(
        question=request.prompt,
        params=sampling_params(request.sampling, tuple(request.choices), limits),
        config=SessionConfig(
            system_prompt=system,
            max_context_tokens=context_tokens,
            max_question_chars=limits.max_question_chars,
        ),
    )
    last = 0.0
    for i, frame in enumerate(request.images):
        t = frame.t_s if frame.HasField("t_s") else 0.0
        if t < last:
            raise InputError(f"images[{i}] at {t:g} s is before the previous image ({last:g} s)")
        last = t
        _check_size(frame.data, limits, f"images[{i}]")
        out.frames.append((t, _picture(frame, media, i)))
    if request.HasField("audio"):
        _check_size(request.audio.data, limits, "audio")
        out.audio, out.audio_t_s = _audio(request.audio, media)
    return out


def _check_size(data: bytes, limits: ServeLimits, what: str) -> None:
    if len(data) > limits.max_message_bytes:
        raise ProtocolError(
            f"{what} of {len(data)} bytes is over the limit of {limits.max_message_bytes}",
            "message_too_large",
        )


def _picture(frame: pb.Frame, media: MediaLimits, index: int) -> np.ndarray:
    fmt = grpc_convert.image_format_name(frame)
    try:
        if fmt == "rgb":
            return rgb_from_bytes(frame.data, frame.width, frame.height, media)
        return decode_image(frame.data, media)
    except StreamerError as exc:
        raise type(exc)(f"images[{index}]: {exc}") from exc


def _audio(audio: pb.Audio, media: MediaLimits) -> tuple[np.ndarray, float]:
    rate = audio.sample_rate or SAMPLE_RATE
    if not media.min_sample_rate <= rate <= media.max_sample_rate:
        raise MediaError(
            f"audio: sample rate {rate} Hz is outside {media.min_sample_rate}-{media.max_sample_rate} Hz"
        )
    if not 1 <= (audio.channels or 1) <= media.max_channels:
        raise MediaError(f"audio: channels must be in 1-{media.max_channels}, got {audio.channels}")
    t_s = audio.t_s if audio.HasField("t_s") else 0.0
    resampler = PcmResampler(media, clock=lambda: 0.0)
    blocks = resampler.push(audio.data, grpc_convert.pcm_format(audio), rate, audio.channels or 1, t_s)
    blocks += resampler.flush()
    if not blocks:
        raise InputError("audio: no samples")
    return np.concatenate([b.waveform() for b in blocks]), blocks[0].t_s


async def _push_all(session: AsyncSession, data: AskInput) -> None:
    """Audio and pictures interleaved by time (the audio cut at each picture's time)."""
    audio, pos = data.audio, 0
    for t, image in data.frames:
        if audio is not None:
            cut = min(max(round((t - data.audio_t_s) * SAMPLE_RATE), pos), len(audio))
            if cut > pos:
                _check(await session.push_audio(audio[pos:cut], data.audio_t_s + pos / SAMPLE_RATE))
                pos = cut
        _check(await session.push_frame(image, t))
    if audio is not None and pos < len(audio):
        _check(await session.push_audio(audio[pos:], data.audio_t_s + pos / SAMPLE_RATE))


def _check(result: object) -> None:
    status = getattr(result, "status", None)
    if status is PushStatus.ACCEPTED:
        return
    reason = getattr(result, "reason", None) or "the input does not fit the session's queue"
    raise AskFailed(f"the request's media is too large for one session: {reason}", "queue_full")


async def run_ask(engine: AsyncEngine, data: AskInput, timeout_s: float | None) -> tuple[Answer, float]:
    """Answer one decoded request in a fresh session; (answer, engine seconds).

    ``timeout_s`` None waits as long as the answer takes. AskFailed(``deadline_exceeded``) when
    the time runs out; the answer is cancelled in the engine and the session closed in every
    case (a cancelled task, e.g. the client went away, cancels the answer on its way out).

    The deadline is a timer that cancels the answer stream rather than ``asyncio.wait_for``
    around the reader: before Python 3.12 ``wait_for`` can lose a cancellation that races with
    a completed inner wait (gh-86296), and the stream wakes its reader at every token.
    """
    if timeout_s is not None and timeout_s <= 0:
        raise AskFailed("the deadline passed before the question reached the engine", DEADLINE_EXCEEDED)
    session = await engine.open_session(data.config)
    stream: AnswerStream | None = None
    timer: asyncio.TimerHandle | None = None
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        if stream is not None:
            stream.cancel()

    try:
        await _push_all(session, data)
        stream = session.ask(data.question, data.params)
        if timeout_s is not None:
            timer = asyncio.get_running_loop().call_later(timeout_s, expire)
        answer = await stream.aresult()
        if expired:
            raise AskFailed(f"no answer within the deadline ({timeout_s:.3f} s)", DEADLINE_EXCEEDED)
        return answer, time.perf_counter() - stream.asked_at
    finally:
        if timer is not None:
            timer.cancel()
        if stream is not None and not stream.finished:
            stream.cancel()  # cancelled from outside (the client left): stop the engine's work
        await session.close()


def answer_response(answer: Answer, engine_s: float, server_s: float) -> pb.AskResponse:
    response = pb.AskResponse(
        text=answer.text,
        finish_reason=grpc_convert.finish_reason(answer.finish_reason.value),
        tokens=len(answer.token_ids),
        context_tokens=answer.context_tokens,
        request_id=answer.request_id,
        engine_s=engine_s,
        server_s=server_s,
    )
    if answer.ttft_s is not None:
        response.ttft_s = answer.ttft_s
    return response


def timeout_from(time_remaining: float | None, max_ask_s: float | None) -> float | None:
    """Seconds the call may still wait: the deadline (less a small margin) or the server's cap."""
    left = None if time_remaining is None else time_remaining - _DEADLINE_MARGIN_S
    if max_ask_s is not None:
        left = max_ask_s if left is None else min(left, max_ask_s)
    return left
