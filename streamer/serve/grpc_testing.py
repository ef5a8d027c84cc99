"""An in-process gRPC server for tests, benchmarks and examples: 127.0.0.1, any free port.

    async with grpc_test_server(FakeEngine(answer="yes")) as t:
        reply = await t.stub.Ask(pb.AskRequest(prompt="Anything?"), timeout=1)

The engine (a :class:`~streamer.engine.fake.FakeEngine` by default) is started if it is not
running and stopped afterwards when this helper started it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc

from streamer.serve.grpc_server import GrpcOptions, GrpcServer, start_grpc_server
from streamer.serve.proto.streamer.v1 import streamer_pb2_grpc as pb_grpc

__all__ = ["GrpcTestServer", "grpc_test_server"]


@dataclass
class GrpcTestServer:
    server: GrpcServer
    channel: grpc.aio.Channel
    stub: pb_grpc.StreamerStub
    engine: Any  # the EngineLoop served

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.port}"


@contextlib.asynccontextmanager
async def grpc_test_server(
    engine: Any = None, hub: Any = None, **options: Any
) -> AsyncIterator[GrpcTestServer]:
    """Serve ``engine`` on 127.0.0.1 (port 0) with ``GrpcOptions(**options)``; a connected stub."""
    if engine is None:
        from streamer.engine.fake import FakeEngine

        engine = FakeEngine()
    started_here = not engine.running
    engine.start()
    opts = GrpcOptions(**{"host": "127.0.0.1", "port": 0, **options})
    server = await start_grpc_server(engine, opts, hub)
    channel = grpc.aio.insecure_channel(
        f"127.0.0.1:{server.port}",
        options=[
            ("grpc.max_receive_message_length", opts.max_message_bytes),
            ("grpc.max_send_message_length", -1),  # let tests send oversized messages on purpose
        ],
    )
    try:
        yield GrpcTestServer(server, channel, pb_grpc.StreamerStub(channel), engine)
    finally:
        await channel.close()
        await server.stop(0)
        if started_here:
            engine.stop()
