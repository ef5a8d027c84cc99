"""The streaming engine: sessions, the unified sequence, KV cache + eviction, scheduling, sampling.

The protocol types import without torch; :class:`Engine` (torch) and :class:`FakeEngine`
(scripted, torch-free) are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamer.engine.collector import AnswerStream
from streamer.engine.protocol import (
    Answer,
    AnswerEvent,
    Ask,
    Cancel,
    CloseSession,
    Command,
    ErrorCode,
    FinishReason,
    Health,
    OpenSession,
    PushAudio,
    PushFrame,
    PushResult,
    PushStatus,
    PushText,
    SamplingParams,
    SessionConfig,
    SessionEvent,
    SessionStats,
)
from streamer.engine.runtime import EngineConfig, EngineLoop
from streamer.engine.session import Session

if TYPE_CHECKING:
    from streamer.engine.aio import AsyncEngine, AsyncSession
    from streamer.engine.engine import Engine
    from streamer.engine.fake import FakeEngine

__all__ = [
    "Answer",
    "AnswerEvent",
    "AnswerStream",
    "Ask",
    "AsyncEngine",
    "AsyncSession",
    "Cancel",
    "CloseSession",
    "Command",
    "Engine",
    "EngineConfig",
    "EngineLoop",
    "ErrorCode",
    "FakeEngine",
    "FinishReason",
    "Health",
    "OpenSession",
    "PushAudio",
    "PushFrame",
    "PushResult",
    "PushStatus",
    "PushText",
    "SamplingParams",
    "Session",
    "SessionConfig",
    "SessionEvent",
    "SessionStats",
]

_LAZY = {
    "Engine": "streamer.engine.engine",
    "FakeEngine": "streamer.engine.fake",
    "AsyncEngine": "streamer.engine.aio",
    "AsyncSession": "streamer.engine.aio",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
