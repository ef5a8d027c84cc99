"""Running the endpoints: uvicorn for the ASGI app, the gRPC server if built, and the drain.

    await serve(engine_loop, ServeOptions(...))     # returns after SIGTERM/SIGINT (or ``stop`` is set)

Shutdown order on SIGTERM/SIGINT: every live session gets ``go_away`` with the grace period;
answers in flight may finish during ``grace_s``; the rest are cancelled and the sessions end
with a fatal ``going_away`` error; then the gRPC and HTTP servers stop and the engine stops.
A second signal during the drain is ignored (the drain is bounded by ``grace_s`` + a few s).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from streamer.engine.aio import AsyncEngine
from streamer.engine.runtime import EngineLoop
from streamer.errors import InputError
from streamer.serve.app import create_app
from streamer.serve.auth import ApiKeyAuth, check_bind
from streamer.serve.hub import LiveHub
from streamer.serve.media import warm_up
from streamer.serve.metrics import ServeMetrics
from streamer.serve.options import ServeOptions
from streamer.serve.ws import HEADER_BYTES

__all__ = ["Listening", "serve"]


@dataclass(frozen=True)
class Listening:
    """Where the servers listen (ports resolved when 0 was asked)."""

    host: str
    http_port: int
    grpc_port: int | None
    tls: bool

    def describe(self) -> str:
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        out = f"http on {scheme}://{host}:{self.http_port}/ (WebSocket /v1/live, /healthz, /metrics)"
        if self.grpc_port is not None:
            out += f"; grpc on {host}:{self.grpc_port}"
        return out


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def _uvicorn_server(config: Any) -> Any:
    import uvicorn

    class _Server(uvicorn.Server):
        """uvicorn without its own signal handling: :func:`serve` drains first, then stops it."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return _Server(config)


async def serve(
    engine_loop: EngineLoop,
    options: ServeOptions,
    on_ready: Callable[[Listening], None] | None = None,
    stop: asyncio.Event | None = None,
    stop_engine: bool = True,
) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop``), then drain; the engine is stopped at the end
    unless ``stop_engine`` is False (a caller that runs it again, e.g. a benchmark)."""
    import uvicorn

    check_bind(options.host, options.api_key)
    options.check_files()
    warm_up()
    engine = AsyncEngine(engine_loop)
    hub = LiveHub(engine, options.limits)
    app = create_app(hub, ApiKeyAuth(options.api_key), ServeMetrics(), options.web_dir)
    sock = _bind(options.host, options.http_port)
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level=options.log_level,
        ws="websockets-sansio" if importlib.util.find_spec("websockets") else "auto",
        ws_max_size=2 * options.limits.max_message_bytes + HEADER_BYTES,  # above the limit: an error event
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        ssl_certfile=options.tls_cert,
        ssl_keyfile=options.tls_key,
        timeout_graceful_shutdown=5,
    )
    server = _uvicorn_server(config)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(
            NotImplementedError, RuntimeError, ValueError
        ):  # not the main thread / platform
            loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    grpc_server = None
    try:
        while not server.started:
            if task.done():
                task.result()
                raise InputError("the HTTP server did not start")
            await asyncio.sleep(0.02)
        grpc_port = None
        if options.grpc_port is not None and importlib.util.find_spec("streamer.serve.grpc_server"):
            grpc = importlib.import_module(
                "streamer.serve.grpc_server"
            )  # optional: built by the gRPC endpoint
            grpc_server = await grpc.start_grpc_server(engine, options, hub)
            grpc_port = getattr(grpc_server, "port", options.grpc_port)
        listening = Listening(options.host, sock.getsockname()[1], grpc_port, options.tls_cert is not None)
        if on_ready is not None:
            on_ready(listening)
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait([stopped, task], return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
    finally:
        await hub.drain(options.grace_s if not task.done() else 0.0)
        if grpc_server is not None:
            await grpc_server.stop(1.0)
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10.0)
        if stop_engine:
            await engine.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
        sock.close()
    if task.done() and not task.cancelled() and task.exception() is not None:
        print(f"streamer serve: the HTTP server failed: {task.exception()!r}", file=sys.stderr)
