"""API-key checking for the gRPC server: a ``grpc.aio`` interceptor over :class:`~streamer.serve.auth.ApiKeyAuth`.

A call is let through when its metadata carries the key as ``authorization: Bearer KEY`` or
``x-api-key: KEY`` (compared in constant time, the same rule as the HTTP endpoints); otherwise it ends with UNAUTHENTICATED and the
stable code ``unauthorized`` in the trailing metadata. Health checks (``grpc.health.v1.Health``)
are always open, so load balancers and orchestrators can probe without the key; reflection and
the ``streamer.v1`` calls need it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from streamer.serve.auth import ApiKeyAuth
from streamer.serve.grpc_errors import CODE_KEY

__all__ = ["OPEN_PREFIXES", "ApiKeyInterceptor"]

OPEN_PREFIXES = ("/grpc.health.v1.Health/",)  # methods callable without the key
_DENIED = "missing or wrong API key (send `authorization: Bearer KEY` or `x-api-key: KEY` metadata)"


class ApiKeyInterceptor(grpc.aio.ServerInterceptor):
    """Refuses every call but the open ones unless it presents the key."""

    def __init__(self, auth: ApiKeyAuth):
        self.auth = auth

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method or ""
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler
        metadata = {k: v for k, v in handler_call_details.invocation_metadata or () if isinstance(v, str)}
        if self.auth.check(metadata):
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
