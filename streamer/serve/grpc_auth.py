"""API-key checking for the gRPC server: a ``grpc.aio`` interceptor over a pure metadata check.

A call is let through when its metadata carries the key as ``authorization: Bearer KEY`` or
``x-api-key: KEY`` (compared in constant time); otherwise it ends with UNAUTHENTICATED and the
stable code ``unauthorized`` in the trailing metadata. Health checks (``grpc.health.v1.Health``)
are always open, so load balancers and orchestrators can probe without the key; reflection and
the ``streamer.v1`` calls need it.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import grpc

from streamer.serve.grpc_errors import CODE_KEY

__all__ = ["OPEN_PREFIXES", "ApiKeyInterceptor", "key_from_metadata", "authorized"]

OPEN_PREFIXES = ("/grpc.health.v1.Health/",)  # methods callable without the key
_DENIED = "missing or wrong API key (send `authorization: Bearer KEY` or `x-api-key: KEY` metadata)"


def key_from_metadata(metadata: Iterable[tuple[str, Any]] | None) -> str | None:
    """The API key a call presents, or None."""
    for key, value in metadata or ():
        if isinstance(value, bytes):
            continue
        name = key.lower()
        if name == "x-api-key":
            return value.strip()
        if name == "authorization" and value[:7].lower() == "bearer ":
            return value[7:].strip()
    return None


def authorized(metadata: Iterable[tuple[str, Any]] | None, api_key: str) -> bool:
    """True when the call's metadata presents ``api_key`` (constant-time comparison)."""
    given = key_from_metadata(metadata)
    return given is not None and hmac.compare_digest(given.encode("utf-8"), api_key.encode("utf-8"))


class ApiKeyInterceptor(grpc.aio.ServerInterceptor):
    """Refuses every call but the open ones unless it presents the key."""

    def __init__(self, api_key: str):
        if not api_key:
            raise ValueError("an empty API key")
        self._api_key = api_key

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method or ""
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler
        if authorized(handler_call_details.invocation_metadata, self._api_key):
            return handler
        return _denying(handler)


async def _deny(request: Any, context: grpc.aio.ServicerContext) -> Any:
    await context.abort(
        grpc.StatusCode.UNAUTHENTICATED,
        f"[unauthorized] {_DENIED}",
        trailing_metadata=((CODE_KEY, "unauthorized"),),
    )


def _denying(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same shape as ``handler`` that ends the call with UNAUTHENTICATED."""
    des, ser = handler.request_deserializer, handler.response_serializer
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(_deny, des, ser)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(_deny, des, ser)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(_deny, des, ser)
    return grpc.unary_unary_rpc_method_handler(_deny, des, ser)
