"""Stable streamer error codes ↔ gRPC status codes, both ways.

Server side: :func:`code_of` reads the stable code of a streamer exception and :func:`abort`
ends a call with the matching :class:`grpc.StatusCode`, the code in the trailing metadata key
``streamer-error-code`` and the message prefixed ``[code]``. Client side: :func:`error_from_rpc`
turns a :class:`grpc.RpcError` into the streamer exception tree (``InputError`` for the caller's
mistakes, ``SessionError`` otherwise), with the stable code in its ``code`` attribute, so no raw
grpc error crosses into callers' code.
"""

from __future__ import annotations

from typing import NoReturn

import grpc

from streamer.errors import InputError, MediaError, SessionError, StreamerError

__all__ = [
    "CODE_KEY",
    "DEADLINE_EXCEEDED",
    "STATUS_OF",
    "abort",
    "code_of",
    "error_from_rpc",
    "status_of",
]

CODE_KEY = "streamer-error-code"  # trailing metadata key carrying the stable code
DEADLINE_EXCEEDED = "deadline_exceeded"  # gRPC only: the call's deadline passed before the answer

_S = grpc.StatusCode
STATUS_OF: dict[str, grpc.StatusCode] = {
    # the engine's codes (streamer.engine.protocol.ErrorCode)
    "invalid_input": _S.INVALID_ARGUMENT,
    "queue_full": _S.RESOURCE_EXHAUSTED,
    "session_closed": _S.NOT_FOUND,
    "session_limit": _S.RESOURCE_EXHAUSTED,
    "context_full": _S.RESOURCE_EXHAUSTED,
    "idle_timeout": _S.ABORTED,
    "model_error": _S.INTERNAL,
    "unavailable": _S.UNAVAILABLE,
    "internal": _S.INTERNAL,
    # the serving layer's codes (streamer.serve.messages.WireCode)
    "bad_message": _S.INVALID_ARGUMENT,
    "bad_header": _S.INVALID_ARGUMENT,
    "bad_seq": _S.INVALID_ARGUMENT,
    "message_too_large": _S.RESOURCE_EXHAUSTED,
    "unsupported_media": _S.INVALID_ARGUMENT,
    "protocol_violation": _S.FAILED_PRECONDITION,
    "unauthorized": _S.UNAUTHENTICATED,
    "session_expired": _S.ABORTED,
    "slow_consumer": _S.RESOURCE_EXHAUSTED,
    "going_away": _S.UNAVAILABLE,
    # gRPC's own
    DEADLINE_EXCEEDED: _S.DEADLINE_EXCEEDED,
    "path_not_allowed": _S.PERMISSION_DENIED,  # Summarize: a server path outside --summarize-dir
    "unimplemented": _S.UNIMPLEMENTED,  # Summarize: the server's engine has no model
}
_CODE_OF_STATUS = {
    _S.INVALID_ARGUMENT: "invalid_input",
    _S.RESOURCE_EXHAUSTED: "message_too_large",  # what grpc itself reports for an oversized message
    _S.NOT_FOUND: "session_closed",
    _S.UNAUTHENTICATED: "unauthorized",
    _S.DEADLINE_EXCEEDED: DEADLINE_EXCEEDED,
    _S.UNAVAILABLE: "unavailable",
    _S.FAILED_PRECONDITION: "protocol_violation",
    _S.PERMISSION_DENIED: "path_not_allowed",
    _S.UNIMPLEMENTED: "unimplemented",
}


def status_of(code: str) -> grpc.StatusCode:
    """The gRPC status for a stable code (INTERNAL for an unknown one)."""
    return STATUS_OF.get(code, _S.INTERNAL)


def code_of(exc: BaseException) -> str:
    """The stable code of an exception: its ``code`` attribute, else one by its class."""
    code = getattr(exc, "code", None)
    if code is not None and not callable(code):
        return str(getattr(code, "value", code))
    if isinstance(exc, MediaError):
        return "unsupported_media"
    if isinstance(exc, InputError):
        return "invalid_input"
    if isinstance(exc, SessionError):
        return "session_closed"
    return "internal"


async def abort(context: grpc.aio.ServicerContext, code: str, message: str) -> NoReturn:
    """End the call now with ``code``'s status; the stable code travels in the trailing metadata."""
    await context.abort(status_of(code), f"[{code}] {message}", trailing_metadata=((CODE_KEY, code),))
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover


def error_from_rpc(exc: grpc.RpcError) -> StreamerError:
    """A client-side gRPC failure as a streamer exception with a stable ``code`` attribute."""
    # grpc.Call (sync stubs) and grpc.aio.AioRpcError both have code(), details(), trailing_metadata()
    status = exc.code() if callable(getattr(exc, "code", None)) else _S.UNKNOWN
    details = (exc.details() if callable(getattr(exc, "details", None)) else None) or str(status)
    trailing = exc.trailing_metadata() if callable(getattr(exc, "trailing_metadata", None)) else None
    code = next((str(v) for k, v in (trailing or ()) if k == CODE_KEY), None)
    code = code or _CODE_OF_STATUS.get(status, "internal")
    cls = InputError if status is _S.INVALID_ARGUMENT else SessionError
    err = cls(f"gRPC {status.name}: {details}")
    setattr(err, "code", code)  # noqa: B010 - the tree's classes have no code field; this one carries it
    return err
