from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_FORMAT_UNSPECIFIED: _ClassVar[ImageFormat]
    IMAGE_FORMAT_JPEG: _ClassVar[ImageFormat]
    IMAGE_FORMAT_PNG: _ClassVar[ImageFormat]
    IMAGE_FORMAT_WEBP: _ClassVar[ImageFormat]
    IMAGE_FORMAT_RGB: _ClassVar[ImageFormat]

class PcmFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PCM_FORMAT_UNSPECIFIED: _ClassVar[PcmFormat]
    PCM_FORMAT_S16LE: _ClassVar[PcmFormat]
    PCM_FORMAT_F32LE: _ClassVar[PcmFormat]

class FinishReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FINISH_REASON_UNSPECIFIED: _ClassVar[FinishReason]
    FINISH_REASON_STOP: _ClassVar[FinishReason]
    FINISH_REASON_LENGTH: _ClassVar[FinishReason]
    FINISH_REASON_CHOICE: _ClassVar[FinishReason]
    FINISH_REASON_CANCELLED: _ClassVar[FinishReason]
    FINISH_REASON_CLOSED: _ClassVar[FinishReason]
    FINISH_REASON_ERROR: _ClassVar[FinishReason]
IMAGE_FORMAT_UNSPECIFIED: ImageFormat
IMAGE_FORMAT_JPEG: ImageFormat
IMAGE_FORMAT_PNG: ImageFormat
IMAGE_FORMAT_WEBP: ImageFormat
IMAGE_FORMAT_RGB: ImageFormat
PCM_FORMAT_UNSPECIFIED: PcmFormat
PCM_FORMAT_S16LE: PcmFormat
PCM_FORMAT_F32LE: PcmFormat
FINISH_REASON_UNSPECIFIED: FinishReason
FINISH_REASON_STOP: FinishReason
FINISH_REASON_LENGTH: FinishReason
FINISH_REASON_CHOICE: FinishReason
FINISH_REASON_CANCELLED: FinishReason
FINISH_REASON_CLOSED: FinishReason
FINISH_REASON_ERROR: FinishReason

class Frame(_message.Message):
    __slots__ = ("data", "format", "width", "height", "t_s")
    DATA_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    T_S_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    format: ImageFormat
    width: int
    height: int
    t_s: float
    def __init__(self, data: _Optional[bytes] = ..., format: _Optional[_Union[ImageFormat, str]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., t_s: _Optional[float] = ...) -> None: ...

class Audio(_message.Message):
    __slots__ = ("data", "format", "sample_rate", "channels", "t_s")
    DATA_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    T_S_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    format: PcmFormat
    sample_rate: int
    channels: int
    t_s: float
    def __init__(self, data: _Optional[bytes] = ..., format: _Optional[_Union[PcmFormat, str]] = ..., sample_rate: _Optional[int] = ..., channels: _Optional[int] = ..., t_s: _Optional[float] = ...) -> None: ...

class SamplingParams(_message.Message):
    __slots__ = ("max_new_tokens", "temperature", "top_k", "top_p", "seed")
    MAX_NEW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    max_new_tokens: int
    temperature: float
    top_k: int
    top_p: float
    seed: int
    def __init__(self, max_new_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., top_k: _Optional[int] = ..., top_p: _Optional[float] = ..., seed: _Optional[int] = ...) -> None: ...

class LiveRequest(_message.Message):
    __slots__ = ("seq", "setup", "frame", "audio", "text", "ask", "cancel", "close")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    SETUP_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ASK_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    setup: Setup
    frame: Frame
    audio: Audio
    text: Text
    ask: Question
    cancel: Cancel
    close: Close
    def __init__(self, seq: _Optional[int] = ..., setup: _Optional[_Union[Setup, _Mapping]] = ..., frame: _Optional[_Union[Frame, _Mapping]] = ..., audio: _Optional[_Union[Audio, _Mapping]] = ..., text: _Optional[_Union[Text, _Mapping]] = ..., ask: _Optional[_Union[Question, _Mapping]] = ..., cancel: _Optional[_Union[Cancel, _Mapping]] = ..., close: _Optional[_Union[Close, _Mapping]] = ...) -> None: ...

class Setup(_message.Message):
    __slots__ = ("system_prompt", "max_context_tokens", "evict_to_fraction", "frame_soft_tokens", "audio_segment_s", "fps", "sampling")
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    MAX_CONTEXT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    EVICT_TO_FRACTION_FIELD_NUMBER: _ClassVar[int]
    FRAME_SOFT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_SEGMENT_S_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    system_prompt: str
    max_context_tokens: int
    evict_to_fraction: float
    frame_soft_tokens: int
    audio_segment_s: float
    fps: float
    sampling: SamplingParams
    def __init__(self, system_prompt: _Optional[str] = ..., max_context_tokens: _Optional[int] = ..., evict_to_fraction: _Optional[float] = ..., frame_soft_tokens: _Optional[int] = ..., audio_segment_s: _Optional[float] = ..., fps: _Optional[float] = ..., sampling: _Optional[_Union[SamplingParams, _Mapping]] = ...) -> None: ...

class Text(_message.Message):
    __slots__ = ("text", "role")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    text: str
    role: str
    def __init__(self, text: _Optional[str] = ..., role: _Optional[str] = ...) -> None: ...

class Question(_message.Message):
    __slots__ = ("question", "choices", "sampling", "request_id")
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    question: str
    choices: _containers.RepeatedScalarFieldContainer[str]
    sampling: SamplingParams
    request_id: str
    def __init__(self, question: _Optional[str] = ..., choices: _Optional[_Iterable[str]] = ..., sampling: _Optional[_Union[SamplingParams, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class Cancel(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class Close(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LiveResponse(_message.Message):
    __slots__ = ("ready", "answer_delta", "answer_done", "stats", "error", "go_away")
    READY_FIELD_NUMBER: _ClassVar[int]
    ANSWER_DELTA_FIELD_NUMBER: _ClassVar[int]
    ANSWER_DONE_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    GO_AWAY_FIELD_NUMBER: _ClassVar[int]
    ready: Ready
    answer_delta: AnswerDelta
    answer_done: AnswerDone
    stats: Stats
    error: Error
    go_away: GoAway
    def __init__(self, ready: _Optional[_Union[Ready, _Mapping]] = ..., answer_delta: _Optional[_Union[AnswerDelta, _Mapping]] = ..., answer_done: _Optional[_Union[AnswerDone, _Mapping]] = ..., stats: _Optional[_Union[Stats, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., go_away: _Optional[_Union[GoAway, _Mapping]] = ...) -> None: ...

class Ready(_message.Message):
    __slots__ = ("session_id", "max_context_tokens", "limits", "seq")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_CONTEXT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    max_context_tokens: int
    limits: Limits
    seq: int
    def __init__(self, session_id: _Optional[str] = ..., max_context_tokens: _Optional[int] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., seq: _Optional[int] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_message_bytes", "max_image_width", "max_image_height", "max_image_pixels", "min_sample_rate", "max_sample_rate", "max_channels", "max_fps", "max_session_s", "idle_timeout_s", "stats_interval_s", "max_new_tokens", "max_question_chars", "max_text_chars")
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_IMAGE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    MAX_IMAGE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_IMAGE_PIXELS_FIELD_NUMBER: _ClassVar[int]
    MIN_SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    MAX_FPS_FIELD_NUMBER: _ClassVar[int]
    MAX_SESSION_S_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    STATS_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    MAX_NEW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_QUESTION_CHARS_FIELD_NUMBER: _ClassVar[int]
    MAX_TEXT_CHARS_FIELD_NUMBER: _ClassVar[int]
    max_message_bytes: int
    max_image_width: int
    max_image_height: int
    max_image_pixels: int
    min_sample_rate: int
    max_sample_rate: int
    max_channels: int
    max_fps: float
    max_session_s: float
    idle_timeout_s: float
    stats_interval_s: float
    max_new_tokens: int
    max_question_chars: int
    max_text_chars: int
    def __init__(self, max_message_bytes: _Optional[int] = ..., max_image_width: _Optional[int] = ..., max_image_height: _Optional[int] = ..., max_image_pixels: _Optional[int] = ..., min_sample_rate: _Optional[int] = ..., max_sample_rate: _Optional[int] = ..., max_channels: _Optional[int] = ..., max_fps: _Optional[float] = ..., max_session_s: _Optional[float] = ..., idle_timeout_s: _Optional[float] = ..., stats_interval_s: _Optional[float] = ..., max_new_tokens: _Optional[int] = ..., max_question_chars: _Optional[int] = ..., max_text_chars: _Optional[int] = ...) -> None: ...

class AnswerDelta(_message.Message):
    __slots__ = ("request_id", "text", "token_ids")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    text: str
    token_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, request_id: _Optional[str] = ..., text: _Optional[str] = ..., token_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class AnswerDone(_message.Message):
    __slots__ = ("request_id", "finish_reason", "ttft_s", "tokens", "latency_s", "error_code", "error_message", "seq")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    TTFT_S_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_S_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    finish_reason: FinishReason
    ttft_s: float
    tokens: int
    latency_s: float
    error_code: str
    error_message: str
    seq: int
    def __init__(self, request_id: _Optional[str] = ..., finish_reason: _Optional[_Union[FinishReason, str]] = ..., ttft_s: _Optional[float] = ..., tokens: _Optional[int] = ..., latency_s: _Optional[float] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ..., seq: _Optional[int] = ...) -> None: ...

class Stats(_message.Message):
    __slots__ = ("session_id", "t_s", "context_tokens", "max_context_tokens", "evicted_tokens", "evictions", "queued_tokens", "queued_bytes", "dropped_frames", "skipped_frames", "frames", "audio_s", "last_consumed_seq", "last_received_seq", "outbound_queued")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    T_S_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONTEXT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    EVICTED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    EVICTIONS_FIELD_NUMBER: _ClassVar[int]
    QUEUED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    QUEUED_BYTES_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FRAMES_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FRAMES_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    AUDIO_S_FIELD_NUMBER: _ClassVar[int]
    LAST_CONSUMED_SEQ_FIELD_NUMBER: _ClassVar[int]
    LAST_RECEIVED_SEQ_FIELD_NUMBER: _ClassVar[int]
    OUTBOUND_QUEUED_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    t_s: float
    context_tokens: int
    max_context_tokens: int
    evicted_tokens: int
    evictions: int
    queued_tokens: int
    queued_bytes: int
    dropped_frames: int
    skipped_frames: int
    frames: int
    audio_s: float
    last_consumed_seq: int
    last_received_seq: int
    outbound_queued: int
    def __init__(self, session_id: _Optional[str] = ..., t_s: _Optional[float] = ..., context_tokens: _Optional[int] = ..., max_context_tokens: _Optional[int] = ..., evicted_tokens: _Optional[int] = ..., evictions: _Optional[int] = ..., queued_tokens: _Optional[int] = ..., queued_bytes: _Optional[int] = ..., dropped_frames: _Optional[int] = ..., skipped_frames: _Optional[int] = ..., frames: _Optional[int] = ..., audio_s: _Optional[float] = ..., last_consumed_seq: _Optional[int] = ..., last_received_seq: _Optional[int] = ..., outbound_queued: _Optional[int] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message", "seq", "request_id", "fatal")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    FATAL_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    seq: int
    request_id: str
    fatal: bool
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., seq: _Optional[int] = ..., request_id: _Optional[str] = ..., fatal: _Optional[bool] = ...) -> None: ...

class GoAway(_message.Message):
    __slots__ = ("seconds_left", "reason")
    SECONDS_LEFT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    seconds_left: float
    reason: str
    def __init__(self, seconds_left: _Optional[float] = ..., reason: _Optional[str] = ...) -> None: ...

class AskRequest(_message.Message):
    __slots__ = ("images", "audio", "prompt", "choices", "sampling", "system_prompt")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[Frame]
    audio: Audio
    prompt: str
    choices: _containers.RepeatedScalarFieldContainer[str]
    sampling: SamplingParams
    system_prompt: str
    def __init__(self, images: _Optional[_Iterable[_Union[Frame, _Mapping]]] = ..., audio: _Optional[_Union[Audio, _Mapping]] = ..., prompt: _Optional[str] = ..., choices: _Optional[_Iterable[str]] = ..., sampling: _Optional[_Union[SamplingParams, _Mapping]] = ..., system_prompt: _Optional[str] = ...) -> None: ...

class AskResponse(_message.Message):
    __slots__ = ("text", "finish_reason", "ttft_s", "tokens", "context_tokens", "request_id", "engine_s", "server_s")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    TTFT_S_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ENGINE_S_FIELD_NUMBER: _ClassVar[int]
    SERVER_S_FIELD_NUMBER: _ClassVar[int]
    text: str
    finish_reason: FinishReason
    ttft_s: float
    tokens: int
    context_tokens: int
    request_id: str
    engine_s: float
    server_s: float
    def __init__(self, text: _Optional[str] = ..., finish_reason: _Optional[_Union[FinishReason, str]] = ..., ttft_s: _Optional[float] = ..., tokens: _Optional[int] = ..., context_tokens: _Optional[int] = ..., request_id: _Optional[str] = ..., engine_s: _Optional[float] = ..., server_s: _Optional[float] = ...) -> None: ...

class SummarizeRequest(_message.Message):
    __slots__ = ("start", "data")
    START_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    start: SummarizeStart
    data: bytes
    def __init__(self, start: _Optional[_Union[SummarizeStart, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class SummarizeStart(_message.Message):
    __slots__ = ("path", "upload_name", "chunk_minutes", "fps", "note_tokens", "summary_tokens", "max_context_tokens")
    PATH_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_NAME_FIELD_NUMBER: _ClassVar[int]
    CHUNK_MINUTES_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    NOTE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONTEXT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    path: str
    upload_name: str
    chunk_minutes: float
    fps: float
    note_tokens: int
    summary_tokens: int
    max_context_tokens: int
    def __init__(self, path: _Optional[str] = ..., upload_name: _Optional[str] = ..., chunk_minutes: _Optional[float] = ..., fps: _Optional[float] = ..., note_tokens: _Optional[int] = ..., summary_tokens: _Optional[int] = ..., max_context_tokens: _Optional[int] = ...) -> None: ...

class SummarizeEvent(_message.Message):
    __slots__ = ("progress", "note", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: SummarizeProgress
    note: SummaryNote
    result: SummaryResult
    def __init__(self, progress: _Optional[_Union[SummarizeProgress, _Mapping]] = ..., note: _Optional[_Union[SummaryNote, _Mapping]] = ..., result: _Optional[_Union[SummaryResult, _Mapping]] = ...) -> None: ...

class SummarizeProgress(_message.Message):
    __slots__ = ("done_s", "total_s", "tokens", "speed", "info")
    DONE_S_FIELD_NUMBER: _ClassVar[int]
    TOTAL_S_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    SPEED_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    done_s: float
    total_s: float
    tokens: int
    speed: float
    info: str
    def __init__(self, done_s: _Optional[float] = ..., total_s: _Optional[float] = ..., tokens: _Optional[int] = ..., speed: _Optional[float] = ..., info: _Optional[str] = ...) -> None: ...

class SummaryNote(_message.Message):
    __slots__ = ("index", "start_s", "end_s", "text")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    START_S_FIELD_NUMBER: _ClassVar[int]
    END_S_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    index: int
    start_s: float
    end_s: float
    text: str
    def __init__(self, index: _Optional[int] = ..., start_s: _Optional[float] = ..., end_s: _Optional[float] = ..., text: _Optional[str] = ...) -> None: ...

class SummaryResult(_message.Message):
    __slots__ = ("markdown", "json")
    MARKDOWN_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    markdown: str
    json: str
    def __init__(self, markdown: _Optional[str] = ..., json: _Optional[str] = ...) -> None: ...
