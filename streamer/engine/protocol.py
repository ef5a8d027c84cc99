"""The engine's public vocabulary: configs, commands, events, results and error codes.

Plain dataclasses, numpy at most, no torch: a server, a Ray replica or a test imports these
without loading a model, and the gRPC and WebSocket messages map to them one to one.

Ids are globally unique strings (``sess_…``, ``req_…``), so they never collide across engines,
replicas or restarts. Everything that enters the engine is validated here, in one place:
:class:`SessionConfig` and :class:`SamplingParams` refuse bad values on construction and
:func:`check_text` refuses anything that is not a valid Unicode string.
"""

from __future__ import annotations

import enum
import math
import uuid
from dataclasses import dataclass, field

import numpy as np

from streamer.errors import InputError
from streamer.text import invalid_utf8

__all__ = [
    "ErrorCode",
    "FinishReason",
    "SessionConfig",
    "SamplingParams",
    "PushStatus",
    "PushResult",
    "AnswerEvent",
    "Answer",
    "SessionEvent",
    "SessionStats",
    "Health",
    "OpenSession",
    "PushFrame",
    "PushAudio",
    "PushText",
    "Ask",
    "Cancel",
    "CloseSession",
    "Command",
    "new_session_id",
    "new_request_id",
    "check_text",
    "MAX_TIMESTAMP_S",
]

MAX_TIMESTAMP_S = 1e7  # seconds (~115 days): later media times are refused as bogus clocks
MAX_SEED = 2**63 - 1  # torch generators take a signed 64-bit seed
MIN_TEMPERATURE = 1e-2  # below this, sampling overflows float32; use 0 (greedy) instead
MAX_TEMPERATURE = 100.0
MIN_TOP_P = 1e-6


def new_session_id() -> str:
    return f"sess_{uuid.uuid4().hex}"


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


class ErrorCode(str, enum.Enum):
    """Stable error codes carried by events and mapped to gRPC / WebSocket errors."""

    INVALID_INPUT = "invalid_input"  # malformed request: bad shape, order, type, value
    QUEUE_FULL = "queue_full"  # the session's input queue is full (backpressure)
    SESSION_CLOSED = "session_closed"  # the session is closed or unknown
    SESSION_LIMIT = "session_limit"  # the engine serves its maximum of sessions
    CONTEXT_FULL = "context_full"  # the input cannot fit the session's context budget
    IDLE_TIMEOUT = "idle_timeout"  # the session was closed for inactivity
    MODEL_ERROR = "model_error"  # a forward, sampling or delivery fault (the session survives)
    UNAVAILABLE = "unavailable"  # the engine is stopped or unhealthy
    INTERNAL = "internal"  # a bug: reported, contained


class FinishReason(str, enum.Enum):
    STOP = "stop"  # a stop token
    LENGTH = "length"  # max_new_tokens
    CHOICE = "choice"  # a constrained answer completed
    CANCELLED = "cancelled"  # cancel(), a newer question, or the consumer went away
    CLOSED = "closed"  # the session closed (or the engine stopped)
    ERROR = "error"  # see AnswerEvent.error / code


def check_text(value: object, what: str, max_chars: int | None = None, empty_ok: bool = True) -> str:
    """``value`` as a str that encodes to UTF-8 (no bytes, None or lone surrogates), or InputError."""
    if not isinstance(value, str):
        raise InputError(f"{what} must be a string, got {type(value).__name__}")
    bad = invalid_utf8(value)
    if bad is not None:
        raise InputError(f"{what} is not valid Unicode text ({bad})")
    if max_chars is not None and len(value) > max_chars:
        raise InputError(f"{what} is longer than {max_chars} characters")
    if not empty_ok and not value.strip():
        raise InputError(f"{what} is empty")
    return value


def _check_int(value: object, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise InputError(f"{name} must be {bound}, got {value}")
    return int(value)


def _check_float(value: object, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise InputError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and low <= value <= high):
        raise InputError(f"{name} must be in [{low:g}, {high:g}], got {value!r}")
    return value


@dataclass
class SessionConfig:
    """Per-session settings, validated on construction; ``max_context_tokens`` None = engine default."""

    system_prompt: str | None = None
    max_context_tokens: int | None = None  # tokens, the full-attention KV budget
    evict_to_fraction: float = 0.75  # after an eviction the cache holds this share of the budget
    frame_soft_tokens: int = 70  # soft tokens per video frame (70/140/280/560/1120)
    audio_segment_s: float = 1.0  # seconds per <boa>…<eoa> segment (<= 30)
    max_pending_tokens: int = 16_384  # tokens queued but not yet prefilled
    max_pending_bytes: int = 64 << 20  # bytes of queued media (frames stored as uint8 RGB)
    max_held_frames: int = 4  # frames waiting for audio before they go in anyway
    # seconds without audio after which frames stop waiting for it (it stopped); None: they wait, as a batch
    # ingest needs (its pushes pause while the engine works); the live endpoints set it
    audio_stall_s: float | None = None
    max_question_chars: int = 16_384  # characters
    idle_timeout_s: float | None = None  # seconds without a command before closing (None: engine's)

    def __post_init__(self) -> None:
        if self.system_prompt is not None:
            check_text(self.system_prompt, "system_prompt", max_chars=1 << 20)
        if self.max_context_tokens is not None:
            _check_int(self.max_context_tokens, "max_context_tokens", 1)
        self.evict_to_fraction = _check_float(self.evict_to_fraction, "evict_to_fraction", 0.1, 1.0)
        if self.frame_soft_tokens not in (70, 140, 280, 560, 1120):
            raise InputError(
                f"frame_soft_tokens must be 70, 140, 280, 560 or 1120, got {self.frame_soft_tokens!r}"
            )
        self.audio_segment_s = _check_float(self.audio_segment_s, "audio_segment_s", 0.04, 30.0)
        _check_int(self.max_pending_tokens, "max_pending_tokens", 256, 1 << 24)
        _check_int(self.max_pending_bytes, "max_pending_bytes", 1 << 20, 1 << 34)
        _check_int(self.max_held_frames, "max_held_frames", 0, 1024)
        if self.audio_stall_s is not None:
            self.audio_stall_s = _check_float(self.audio_stall_s, "audio_stall_s", 0.05, 3600.0)
        _check_int(self.max_question_chars, "max_question_chars", 1, 1 << 20)
        if self.idle_timeout_s is not None:
            self.idle_timeout_s = _check_float(self.idle_timeout_s, "idle_timeout_s", 0.001, 1e9)


@dataclass
class SamplingParams:
    """How one answer is generated; every field is checked on construction."""

    max_new_tokens: int = 256  # tokens, the answer's hard cap
    temperature: float = 0.0  # 0 = greedy, else in [0.01, 100]
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1 = off
    seed: int | None = None  # for reproducible sampling, in [0, 2**63)
    stop_token_ids: frozenset[int] = field(default_factory=frozenset)  # end the answer (not emitted as text)
    choices: tuple[str, ...] = ()  # when set, the answer is exactly one of these

    def __post_init__(self) -> None:
        _check_int(self.max_new_tokens, "max_new_tokens", 1, 1 << 20)
        t = _check_float(self.temperature, "temperature", 0.0, MAX_TEMPERATURE)
        if 0 < t < MIN_TEMPERATURE:
            raise InputError(f"temperature must be 0 (greedy) or in [{MIN_TEMPERATURE}, {MAX_TEMPERATURE:g}]")
        self.temperature = t
        _check_int(self.top_k, "top_k", 0, 1 << 24)
        self.top_p = _check_float(self.top_p, "top_p", MIN_TOP_P, 1.0)
        if self.seed is not None:
            _check_int(self.seed, "seed", 0, MAX_SEED)
        self.stop_token_ids = frozenset(_check_int(t, "stop token id", 0) for t in self.stop_token_ids)
        if isinstance(self.choices, str):
            raise InputError("choices must be a list of strings, not one string")
        self.choices = tuple(
            check_text(c, "each choice", max_chars=1024, empty_ok=False) for c in self.choices
        )
        if len(self.choices) > 1024:
            raise InputError("at most 1024 choices")


class PushStatus(str, enum.Enum):
    ACCEPTED = "accepted"  # queued (older frames may have been dropped to make room: see dropped_frames)
    DROPPED = "dropped"  # this frame was dropped under overload (counted in stats)
    REFUSED = "refused"  # nothing changed; see reason (the queue is full of audio/text)


@dataclass(frozen=True)
class PushResult:
    """What became of one push; decided before any state changed."""

    status: PushStatus
    dropped_frames: int = 0  # queued frames dropped by this push (this one included when DROPPED)
    reason: str | None = None  # why, when not ACCEPTED
    code: ErrorCode | None = None  # QUEUE_FULL when REFUSED

    @property
    def accepted(self) -> bool:
        return self.status is PushStatus.ACCEPTED


@dataclass
class AnswerEvent:
    """One streamed piece of an answer (deltas are merged while the reader is behind)."""

    text: str  # new text (never a broken UTF-8 character)
    token_ids: list[int]  # ids generated with this event
    finish_reason: FinishReason | None = None  # set on the last event
    error: str | None = None  # message when finish_reason is ERROR
    code: ErrorCode | None = None  # stable code when finish_reason is ERROR


@dataclass
class Answer:
    """A finished answer with its figures."""

    request_id: str
    text: str
    token_ids: list[int]
    finish_reason: FinishReason
    ttft_s: float | None  # seconds from ask() to the first token (None: no token was emitted)
    context_tokens: int  # tokens in the full-attention cache when the answer started
    evicted_tokens: int  # tokens evicted from the session so far
    error: str | None = None
    code: ErrorCode | None = None


@dataclass(frozen=True)
class SessionEvent:
    """Something a session's client must hear about outside an answer (e.g. a failed prefill)."""

    session_id: str
    code: ErrorCode
    message: str
    seq: int | None = None  # the client sequence number of the input concerned, if known


@dataclass(frozen=True)
class SessionStats:
    """A session's figures, readable at any time without waiting for the engine."""

    session_id: str
    context_tokens: int  # tokens in the full-attention cache
    evicted_tokens: int  # tokens evicted so far
    evictions: int  # eviction rounds so far
    queued_tokens: int  # tokens accepted but not yet prefilled (estimated before tokenization)
    queued_bytes: int  # bytes of queued media
    dropped_frames: int  # frames dropped under overload so far
    frames: int  # frames prefilled so far
    audio_s: float  # seconds of audio prefilled so far
    last_consumed_seq: int | None  # client sequence number of the last input taken by the engine
    kv_bytes_allocated: int  # bytes of the session's cache tensors
    closed: bool  # the session has ended


@dataclass(frozen=True)
class Health:
    """What ``/healthz`` and a Ray health check read."""

    status: str  # "ok", "starting", "stopped" or "unhealthy"
    reason: str | None  # why, when not ok
    sessions: int  # open sessions
    steps: int  # engine steps run
    step_errors: int  # steps that failed as a whole (contained)
    last_step_age_s: float | None  # seconds since the step thread last finished a step or waited

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# ---- commands: what a front end sends; Engine.submit() takes any of them -----------------------


@dataclass
class OpenSession:
    config: SessionConfig = field(default_factory=SessionConfig)
    session_id: str | None = None  # None: the engine makes one


@dataclass
class PushFrame:
    session_id: str
    image: np.ndarray  # uint8 [H, W, 3] RGB
    t_s: float | None = None  # seconds from the session start (None: now)
    seq: int | None = None  # the client's sequence number


@dataclass
class PushAudio:
    session_id: str
    samples: np.ndarray  # float32 16 kHz mono
    t_s: float | None = None  # seconds (None: right after the previous audio)
    seq: int | None = None


@dataclass
class PushText:
    session_id: str
    text: str
    role: str = "user"
    seq: int | None = None


@dataclass
class Ask:
    session_id: str
    question: str
    params: SamplingParams = field(default_factory=SamplingParams)
    request_id: str | None = None  # None: the engine makes one
    seq: int | None = None


@dataclass
class Cancel:
    session_id: str
    request_id: str | None = None  # None: whatever answer is running


@dataclass
class CloseSession:
    session_id: str


Command = OpenSession | PushFrame | PushAudio | PushText | Ask | Cancel | CloseSession
