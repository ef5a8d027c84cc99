"""``streamer.v1.Streamer`` on Serve's gRPC proxy: the servicer of ``streamer serve``, unchanged.

Serve's gRPC proxy calls the ingress deployment's methods named like the RPCs (``Live``, ``Ask``,
``Summarize``) with the request (a ``gRPCInputStream`` for client / bidirectional streams) and a
``RayServegRPCContext``; a streaming RPC's method yields its responses. :class:`GrpcOnServe` runs
the very :class:`~streamer.serve.grpc_server.StreamerService` that ``streamer serve`` registers on
its own grpc.aio server, through :class:`ServeContext`, the part of ``grpc.aio.ServicerContext``
that service uses (``peer``, ``write``, ``abort``, ``time_remaining``):

* ``write(message)`` queues a response; the deployment method yields it;
* ``abort(status, details, trailing_metadata)`` sets them on Serve's context and raises
  :class:`Aborted`; Serve's proxy then ends the call with that status and details;
* the API key (``authorization: Bearer KEY`` / ``x-api-key``) is checked here, since Serve's
  proxy takes no interceptors.

A ``Live`` stream is one request, held by one replica for the session, like a WebSocket. Serve
pulls each inbound message from the proxy with one actor call (Ray's beta bidirectional
streaming), which is what the per-message overhead figures in the README measure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, NoReturn

from streamer.errors import StreamerError

__all__ = ["Aborted", "GrpcOnServe", "ServeContext"]

_DONE = object()


class Aborted(StreamerError):
    """A call ended by ``context.abort`` (the status is on Serve's context)."""


class ServeContext:
    """What :class:`~streamer.serve.grpc_server.StreamerService` needs of a servicer context."""

    def __init__(self, context: Any):
        self.context = context  # ray.serve.grpc_util.RayServegRPCContext
        self.out: asyncio.Queue[Any] = asyncio.Queue()

    def peer(self) -> str:
        return str(self.context.peer() or "")

    def invocation_metadata(self) -> list[tuple[str, Any]]:
        return list(self.context.invocation_metadata() or ())

    def time_remaining(self) -> float | None:
        return None  # Serve does not pass the client's deadline on; the server's caps apply

    async def write(self, message: Any) -> None:
        await self.out.put(message)

    async def abort(self, code: Any, details: str = "", trailing_metadata: Any = ()) -> NoReturn:
        self.context.set_code(code)
        self.context.set_details(details)
        if trailing_metadata:
            self.context.set_trailing_metadata(list(trailing_metadata))
        raise Aborted(details)


def _status(code: str) -> Any:
    from streamer.serve.grpc_errors import status_of

    return status_of(code)


class GrpcOnServe:
    """The three RPCs over one replica's service (see the module docstring)."""

    def __init__(self, service: Any, auth: Any):
        self.service = service  # streamer.serve.grpc_server.StreamerService
        self.auth = auth  # streamer.serve.auth.ApiKeyAuth, the rule of the HTTP endpoints and grpc_auth

    async def _check_key(self, context: ServeContext) -> None:
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        if not self.auth.check(metadata):
            await context.abort(
                _status("unauthorized"),
                "[unauthorized] missing or wrong API key (send `authorization: Bearer KEY` or `x-api-key: KEY`)",
                (("streamer-error-code", "unauthorized"),),
            )

    async def live(self, requests: AsyncIterator[Any], grpc_context: Any) -> AsyncIterator[Any]:
        context = ServeContext(grpc_context)
        await self._check_key(context)

        async def run() -> None:
            try:
                await self.service.live(requests, context)
            finally:
                context.out.put_nowait(_DONE)

        task = asyncio.ensure_future(run())
        try:
            while (message := await context.out.get()) is not _DONE:
                yield message
            await task  # raises Aborted with the status set
        finally:
            if not task.done():  # the client went away: the handler's cancellation cleans the session up
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, StreamerError):
                    await task

    async def ask(self, request: Any, grpc_context: Any) -> Any:
        context = ServeContext(grpc_context)
        await self._check_key(context)
        return await self.service.ask(request, context)

    async def summarize(self, requests: AsyncIterator[Any], grpc_context: Any) -> AsyncIterator[Any]:
        context = ServeContext(grpc_context)
        await self._check_key(context)
        async for event in self.service.summarize(requests, context):
            yield event
