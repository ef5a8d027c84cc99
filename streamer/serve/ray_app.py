"""The Ray Serve application: one deployment whose replicas each hold an engine and the endpoints.

    replica = one engine (the model + its sessions' KV caches) + the same front end as ``streamer serve``:
              the ASGI app (``/``, ``/healthz``, ``/metrics``, ``/v1/live``) over a LiveHub, and the
              ``streamer.v1.Streamer`` gRPC calls (``Live``, ``Ask``, ``Summarize``) over the same hub

Serve's HTTP proxy hands a WebSocket to one replica for its lifetime, and its gRPC proxy does the
same with a ``Live`` stream; every message of a session therefore reaches the replica holding its
KV cache, with no session-id router (ConsistentHashRouter would pin sessions by hash and ignore
load). New sessions are placed by :class:`~streamer.serve.ray_router.FreeCapacityRouter`
(most free session capacity); a replica already full refuses with a fatal ``session_limit``
error event (the hub's admission) instead of queueing. Sizing: :mod:`streamer.serve.ray_config`.

Failures: ``check_health`` raises when the engine is unhealthy, so Serve replaces the replica;
a replica that dies drops its sockets and streams at once (clients see the connection close /
gRPC UNAVAILABLE) and new sessions go to the others. A planned drain sends ``go_away`` first
(:mod:`streamer.serve.ray_drain`). Session ids name their replica (``sess_<replica>_<hex>``) so
logs and clients can tell where a session lives.

    app = build_app(RayServeConfig(num_replicas=2))     # a serve.Application
    serve.run(app, name=APP_NAME, route_prefix="/")
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ray import serve

from streamer.engine.aio import AsyncEngine, AsyncSession
from streamer.engine.protocol import SessionConfig
from streamer.engine.runtime import EngineConfig, EngineLoop
from streamer.serve.ray_config import DEPLOYMENT_NAME, RayServeConfig

__all__ = ["ReplicaEngine", "StreamerEngine", "app_builder", "build_app", "make_engine"]


class ReplicaEngine(AsyncEngine):
    """The async engine of one replica: session ids carry the replica's tag."""

    def __init__(self, engine: EngineLoop, replica: str):
        super().__init__(engine)
        self.replica = replica

    async def open_session(
        self, config: SessionConfig | None = None, session_id: str | None = None
    ) -> AsyncSession:
        return await super().open_session(config, session_id or f"sess_{self.replica}_{uuid.uuid4().hex}")


def make_engine(config: RayServeConfig) -> EngineLoop:
    """A started engine for one replica (the model loads here)."""
    limits = config.serve_limits()
    engine_config = EngineConfig(
        # live sessions + the headroom (Ask and summarize jobs open sessions too); the hub admits live ones
        max_sessions=config.sessions_per_replica + config.request_headroom,
        idle_timeout_s=limits.idle_timeout_s + 120.0,
    )
    if config.fake:
        from streamer.engine.fake import FakeEngine

        engine: EngineLoop = FakeEngine(step_delay_s=config.fake_step_s, config=engine_config)
        engine.start()
        return engine
    from streamer.cli.common import load_engine

    args = argparse.Namespace(
        model=config.model, dtype=config.dtype, device=config.resolved_device, threads=config.resolved_threads
    )
    return load_engine(args, engine_config)


@serve.ingress()
class StreamerEngine:
    """One replica (see the module docstring). Serve calls the methods; nothing else should."""

    async def __init__(self, config: RayServeConfig | dict[str, Any] | None = None):  # type: ignore[misc]
        from streamer.serve.auth import ApiKeyAuth
        from streamer.serve.hub import LiveHub
        from streamer.serve.metrics import ServeMetrics
        from streamer.serve.ray_drain import DrainWatcher, replica_state

        self.config = config if isinstance(config, RayServeConfig) else RayServeConfig.from_args(config)
        context = serve.get_replica_context()
        self.replica = context.replica_tag
        self.engine = await asyncio.to_thread(make_engine, self.config)
        self.hub = LiveHub(ReplicaEngine(self.engine, self.replica), self.config.serve_limits())
        self.auth = ApiKeyAuth(self.config.resolved_api_key())
        self.metrics = ServeMetrics()
        self.grpc = _grpc_service(self.hub, self.auth, self.config)
        self.jobs = 0  # summarize jobs running here
        self._watcher: asyncio.Task[None] | None = None
        if self.config.drain_poll_s > 0:
            app, deployment = context.app_name, context.deployment
            watcher = DrainWatcher(
                lambda: replica_state(app, deployment, self.replica),
                self.hub.drain,
                self.config.grace_s,
                self.config.drain_poll_s,
            )
            self._watcher = asyncio.ensure_future(watcher.run())

    def __serve_build_asgi_app__(self) -> Any:
        from streamer.serve.app import create_app

        return create_app(self.hub, self.auth, self.metrics, self.config.web_dir)

    # ---- what Serve's controller and routers call --------------------------------------------
    def check_health(self) -> None:
        """Raise when the engine cannot serve: Serve then replaces this replica."""
        health = self.engine.health()
        if health.status not in ("ok", "starting"):
            raise RuntimeError(f"engine {health.status}: {health.reason}")

    def record_routing_stats(self) -> dict[str, Any]:
        """Free capacity for :class:`~streamer.serve.ray_router.FreeCapacityRouter`."""
        capacity = 0 if self.hub.draining else self.config.sessions_per_replica
        sessions = self.hub.sessions + self.jobs
        kv_per_session = self.engine.config.kv_bytes_per_session
        return {
            "capacity": capacity,
            "sessions": sessions,
            "headroom": self.config.request_headroom,
            "free_kv_bytes": max(0, capacity - sessions) * kv_per_session,
        }

    # ---- gRPC: Serve's proxy calls the methods named like the RPCs (streamer.serve.ray_grpc) ----
    async def Live(self, request_stream: Any, grpc_context: Any) -> AsyncIterator[Any]:
        async for message in self.grpc.live(request_stream, grpc_context):
            yield message

    async def Ask(self, request: Any, grpc_context: Any) -> Any:
        return await self.grpc.ask(request, grpc_context)

    async def Summarize(self, request_stream: Any, grpc_context: Any) -> AsyncIterator[Any]:
        async for event in self.grpc.summarize(request_stream, grpc_context):
            yield event

    # ---- batch: summarize one recording (driven by streamer.serve.ray_batch) ------------------
    async def summarize_job(self, job: Any) -> AsyncIterator[dict[str, Any]]:
        """Progress events, then ``{"kind": "done", ...}`` or ``{"kind": "failed", ...}`` (a stream)."""
        from streamer.serve.ray_batch import run_job

        self.jobs += 1
        try:
            async for event in run_job(self.engine, job, self.replica):
                yield event
        finally:
            self.jobs -= 1

    def describe(self) -> dict[str, Any]:
        """Which model this replica serves (the summarize driver checks it against its flags)."""
        loaded = getattr(self.engine, "loaded", None)
        return {
            "replica": self.replica,
            "fake": self.config.fake,
            "model": None if loaded is None else str(Path(loaded.path).resolve()),
            "dtype": None if loaded is None else str(loaded.dtype),
        }

    async def __del__(self) -> None:
        """After Serve's drain: stop the watcher and the engine (answers still running end ``closed``)."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(BaseException):
                await self._watcher
        await asyncio.to_thread(self.engine.stop, 0.0)


def _grpc_service(hub: Any, auth: Any, config: RayServeConfig) -> Any:
    """The servicer of ``streamer serve``'s gRPC server, over this replica's hub."""
    from streamer.serve.grpc_server import GrpcOptions, StreamerService
    from streamer.serve.ray_grpc import GrpcOnServe

    options = GrpcOptions(limits=config.serve_limits(), summarize_dir=config.summarize_dir)
    return GrpcOnServe(StreamerService(hub.engine, hub, options), auth)


def build_app(config: RayServeConfig | None = None) -> Any:
    """The Serve application (``serve.run(build_app(...), name=APP_NAME, route_prefix="/")``)."""
    config = config or RayServeConfig()
    deployment: Any = serve.deployment(StreamerEngine)
    deployment = deployment.options(name=DEPLOYMENT_NAME, **config.deployment_options())
    return deployment.bind(config.replica_args())


def app_builder(args: dict[str, Any]) -> Any:
    """The application from a Serve config's ``args:`` (``import_path: streamer.serve.ray_app:app_builder``)."""
    return build_app(RayServeConfig.from_args(args))
