"""The gRPC server of ``streamer serve``: ``streamer.v1.Streamer`` + health + reflection on ``grpc.aio``.

    handle = await start_grpc_server(AsyncEngine(engine), GrpcOptions(port=50051), hub)
    ...                                   # serve; handle.port is the bound port (port=0: any free one)
    await hub.drain(grace_s)              # SIGTERM: go_away to Live streams, answers finish
    await handle.stop(grace_s)            # then in-flight calls get grace_s, the rest are cancelled

Transport settings (all in :class:`GrpcOptions`, documented in docs/protocol.md):

- **message size**: a received message may be ``limits.max_message_bytes`` + 1 MiB (the
  envelope); a bigger one is refused by gRPC itself with RESOURCE_EXHAUSTED and ends its call.
  A picture or PCM chunk over ``max_message_bytes`` but under that cap gets a
  ``message_too_large`` error event and the stream goes on. Sent messages: the same cap.
- **keepalive**: the server pings an idle connection every ``keepalive_time_s`` (30 s) and
  drops it if no ack comes within ``keepalive_timeout_s`` (10 s); clients may ping every
  ``min_ping_interval_s`` (10 s) or slower, also without calls in flight.
- **auth**: with an API key every call but health checks needs ``authorization: Bearer KEY``
  or ``x-api-key: KEY`` metadata (constant-time compare, :mod:`streamer.serve.grpc_auth`); a
  non-loopback host refuses to start without one. **TLS** when ``tls_cert`` and ``tls_key`` are set.
- **errors**: a call that fails ends with a gRPC status and the stable code in the trailing
  metadata key ``streamer-error-code`` (:mod:`streamer.serve.grpc_errors`); errors inside a
  Live stream are error events.
- **isolation**: each call is its own task; model work runs on the engine's step thread,
  decoding in worker threads; a failing call never affects another.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from streamer.engine.aio import AsyncEngine
from streamer.errors import ConfigError, InputError, StreamerError
from streamer.serve import grpc_ask
from streamer.serve.auth import ApiKeyAuth, check_bind
from streamer.serve.grpc_auth import ApiKeyInterceptor
from streamer.serve.grpc_errors import abort, code_of
from streamer.serve.grpc_health import EngineHealth
from streamer.serve.grpc_live import Malformed, lenient, serve_live
from streamer.serve.grpc_summarize import Summarizer
from streamer.serve.hub import LiveHub
from streamer.serve.limits import ServeLimits
from streamer.serve.proto.streamer.v1 import streamer_pb2 as pb

__all__ = ["SERVICE", "GrpcOptions", "GrpcServer", "StreamerService", "start_grpc_server"]

SERVICE = "streamer.v1.Streamer"
log = logging.getLogger("streamer.serve.grpc")
_ENVELOPE_BYTES = 1 << 20  # room for a message's fields around its largest payload


@dataclass(frozen=True)
class GrpcOptions:
    """How the gRPC server listens and what it accepts (``streamer serve`` fills it from its flags)."""

    host: str = "127.0.0.1"  # address to bind; not loopback → api_key required
    port: int = 50051  # TCP port; 0 = any free port (read GrpcServer.port)
    api_key: str | None = None  # required in call metadata when set
    tls_cert: str | None = None  # PEM certificate chain file (with tls_key: TLS)
    tls_key: str | None = None  # PEM private key file
    limits: ServeLimits = field(default_factory=ServeLimits)  # shared with the WebSocket endpoint
    keepalive_time_s: float = 30.0  # seconds between server pings on an idle connection
    keepalive_timeout_s: float = 10.0  # seconds to wait for a ping ack before closing
    min_ping_interval_s: float = 10.0  # seconds: clients pinging more often are told off (GOAWAY)
    max_concurrent_streams: int = 256  # calls at once on one connection
    max_ask_images: int = 16  # pictures in one Ask
    max_ask_s: float | None = 120.0  # seconds one Ask may take without a deadline of its own
    ask_context_tokens: int | None = None  # KV budget of an Ask's session (None: the engine's default)
    summarize_dir: str | None = None  # server-side files Summarize may read (None: uploads only)
    max_upload_bytes: int = 2 << 30  # bytes of one uploaded recording
    max_summaries: int = 1  # Summarize calls running at once
    reflection: bool = True  # serve grpc.reflection.v1alpha

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise InputError(f"gRPC port must be in [0, 65535], got {self.port}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise InputError("TLS needs both a certificate and a key file")
        check_bind(self.host, self.api_key)
        if self.max_ask_images < 0 or self.max_upload_bytes <= 0 or self.max_summaries < 1:
            raise InputError("max_ask_images, max_upload_bytes and max_summaries must be positive")

    @property
    def max_message_bytes(self) -> int:
        """The largest gRPC message received or sent, bytes."""
        return self.limits.max_message_bytes + _ENVELOPE_BYTES

    def channel_options(self) -> list[tuple[str, int]]:
        return [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.keepalive_time_ms", int(self.keepalive_time_s * 1000)),
            ("grpc.keepalive_timeout_ms", int(self.keepalive_timeout_s * 1000)),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", int(self.min_ping_interval_s * 1000)),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.max_concurrent_streams", self.max_concurrent_streams),
            ("grpc.so_reuseport", 0),
        ]

    @classmethod
    def from_serve(cls, options: Any, **overrides: Any) -> GrpcOptions:
        """From ``streamer serve``'s options object: the attributes named like these fields
        (``grpc_port`` for ``port``); missing ones keep the defaults."""
        values = {}
        for f in dataclasses.fields(cls):
            name = "grpc_port" if f.name == "port" else f.name
            if hasattr(options, name) and getattr(options, name) is not None:
                values[f.name] = getattr(options, name)
        values.update(overrides)
        return cls(**values)


class StreamerService:
    """The ``streamer.v1.Streamer`` calls (registered with lenient deserializers, see :func:`_handlers`)."""

    def __init__(self, engine: AsyncEngine, hub: LiveHub, options: GrpcOptions):
        self.engine, self.hub, self.options = engine, hub, options
        self.summarizer = Summarizer(
            engine.engine, options.summarize_dir, options.max_upload_bytes, options.max_summaries
        )

    async def live(self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> None:
        await serve_live(self.hub, requests, context)

    async def ask(self, request: Any, context: grpc.aio.ServicerContext) -> pb.AskResponse:
        started = time.perf_counter()
        if isinstance(request, Malformed):
            await abort(context, "bad_message", f"cannot parse the AskRequest: {request.reason}")
        if self.hub.draining:
            await abort(context, "going_away", "the server is shutting down; no new questions")
        opts = self.options
        try:
            data = await asyncio.to_thread(
                grpc_ask.decode_ask, request, opts.limits, opts.max_ask_images, opts.ask_context_tokens
            )
            timeout = grpc_ask.timeout_from(context.time_remaining(), opts.max_ask_s)
            answer, engine_s = await grpc_ask.run_ask(self.engine, data, timeout)
        except StreamerError as exc:
            await abort(context, code_of(exc), str(exc))
        except Exception as exc:  # a bug: contained to this call, reported as internal
            log.exception("gRPC Ask failed")
            await abort(context, "internal", f"internal error: {exc!r}")
        if answer.finish_reason.value == "error":
            code = answer.code.value if answer.code is not None else "internal"
            await abort(context, code, answer.error or "the answer failed")
        if answer.finish_reason.value == "closed":
            await abort(context, "unavailable", answer.error or "the engine stopped")
        return grpc_ask.answer_response(answer, engine_s, time.perf_counter() - started)

    async def summarize(
        self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SummarizeEvent]:
        try:
            async for event in self.summarizer.run(requests):
                yield event
        except StreamerError as exc:
            await abort(context, code_of(exc), str(exc))
        except Exception as exc:  # a bug: contained to this call, reported as internal
            log.exception("gRPC Summarize failed")
            await abort(context, "internal", f"internal error: {exc!r}")


def _handlers(service: StreamerService) -> grpc.GenericRpcHandler:
    ser = {
        "Live": pb.LiveResponse.SerializeToString,
        "Ask": pb.AskResponse.SerializeToString,
        "Summarize": pb.SummarizeEvent.SerializeToString,
    }
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Live": grpc.stream_stream_rpc_method_handler(service.live, lenient(pb.LiveRequest), ser["Live"]),
            "Ask": grpc.unary_unary_rpc_method_handler(service.ask, lenient(pb.AskRequest), ser["Ask"]),
            "Summarize": grpc.stream_stream_rpc_method_handler(
                service.summarize, lenient(pb.SummarizeRequest), ser["Summarize"]
            ),
        },
    )


class GrpcServer:
    """A running server: ``port`` (bound), ``address``, ``stop(grace_s)``, ``wait()``."""

    def __init__(
        self, server: grpc.aio.Server, port: int, options: GrpcOptions, health: EngineHealth, hub: LiveHub
    ):
        self.server = server
        self.port = port
        self.options = options
        self.health = health
        self.hub = hub

    @property
    def address(self) -> str:
        host = self.options.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    async def stop(self, grace_s: float = 0.0) -> None:
        """Stop accepting calls (health NOT_SERVING), give in-flight calls ``grace_s``, cancel the rest."""
        self.health.stopping = True
        await self.server.stop(grace_s)

    async def wait(self) -> None:
        """Until the server stops."""
        await self.server.wait_for_termination()


def _credentials(options: GrpcOptions) -> grpc.ServerCredentials | None:
    if options.tls_cert is None or options.tls_key is None:
        return None
    try:
        cert, key = Path(options.tls_cert).read_bytes(), Path(options.tls_key).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the TLS files: {exc}") from exc
    return grpc.ssl_server_credentials([(key, cert)])


async def start_grpc_server(
    engine: Any, options: GrpcOptions | Any = None, hub: LiveHub | None = None
) -> GrpcServer:
    """Serve ``engine`` (an AsyncEngine, or an EngineLoop to wrap) over gRPC; returns once listening.

    ``options``: :class:`GrpcOptions`, or ``streamer serve``'s options object (read by
    :meth:`GrpcOptions.from_serve`). ``hub``: the :class:`LiveHub` shared with the WebSocket
    endpoint (sessions are counted across both); None makes one for this server alone.
    Raises InputError / ConfigError for bad options, an address in use or unreadable TLS files.
    """
    engine = engine if isinstance(engine, AsyncEngine) else AsyncEngine(engine)
    if options is None:
        options = GrpcOptions()
    elif not isinstance(options, GrpcOptions):
        options = GrpcOptions.from_serve(options)
    hub = hub or LiveHub(engine, options.limits)
    health = EngineHealth(engine.health, lambda: hub.draining)
    interceptors = [ApiKeyInterceptor(ApiKeyAuth(options.api_key))] if options.api_key else []
    server = grpc.aio.server(interceptors=interceptors, options=options.channel_options())
    server.add_generic_rpc_handlers((_handlers(StreamerService(engine, hub, options)),))
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    if options.reflection:
        from grpc_reflection.v1alpha import reflection

        names = (SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)
    address = f"[{options.host}]:{options.port}" if ":" in options.host else f"{options.host}:{options.port}"
    credentials = _credentials(options)
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError as exc:
        raise InputError(f"cannot listen for gRPC on {address}: {exc}") from exc
    if port == 0:
        raise InputError(f"cannot listen for gRPC on {address} (in use?)")
    await server.start()
    return GrpcServer(server, port, options, health, hub)
