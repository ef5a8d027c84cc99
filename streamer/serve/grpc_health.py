"""Standard ``grpc.health.v1`` health checking, read live from the engine's :class:`Health`.

``Check`` answers SERVING while ``engine.health()`` is ``ok`` (or ``starting``) and the server
is neither draining (``LiveHub.drain``) nor stopping, NOT_SERVING otherwise; ``Watch`` streams the status whenever it changes
(checked every ``poll_s``). Known services: ``""`` (the whole server) and ``streamer.v1.Streamer``;
any other name is NOT_FOUND, as the health protocol specifies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from streamer.engine.protocol import Health

__all__ = ["SERVICES", "EngineHealth", "serving_status"]

SERVICES = ("", "streamer.v1.Streamer")
_STATUS = health_pb2.HealthCheckResponse


def serving_status(health: Health, draining: bool) -> int:
    """SERVING or NOT_SERVING for an engine health reading."""
    if draining or health.status not in ("ok", "starting"):
        return _STATUS.NOT_SERVING
    return _STATUS.SERVING


class EngineHealth(health_pb2_grpc.HealthServicer):
    def __init__(
        self, health: Callable[[], Health], draining: Callable[[], bool] = lambda: False, poll_s: float = 0.5
    ):
        self._health = health
        self._draining = draining  # True once the server drains: NOT_SERVING from then on
        self._poll_s = poll_s
        self.stopping = False  # set when the server stops

    def status(self) -> int:
        return serving_status(self._health(), self.stopping or self._draining())

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        if request.service not in SERVICES:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=self.status())

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext) -> None:
        last = None
        while True:
            status = self.status() if request.service in SERVICES else _STATUS.SERVICE_UNKNOWN
            if status != last:
                await context.write(health_pb2.HealthCheckResponse(status=status))
                last = status
            await asyncio.sleep(self._poll_s)
