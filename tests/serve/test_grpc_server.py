"""The gRPC server's frame: health, reflection, API keys, TLS, options, the streamer serve contract."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from streamer.engine.fake import FakeEngine
from streamer.errors import InputError
from streamer.serve.grpc_errors import CODE_KEY, error_from_rpc
from streamer.serve.grpc_server import GrpcOptions, start_grpc_server
from streamer.serve.grpc_testing import grpc_test_server
from streamer.serve.limits import ServeLimits
from streamer.serve.options import ServeOptions
from streamer.serve.proto.streamer.v1 import streamer_pb2 as pb
from streamer.serve.proto.streamer.v1 import streamer_pb2_grpc as pb_grpc

pytestmark = pytest.mark.timeout(60)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def run(coro, timeout: float = 30.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_health_follows_the_engine_and_the_drain():
    engine = FakeEngine()

    async def main():
        async with grpc_test_server(engine) as t:
            health = health_pb2_grpc.HealthStub(t.channel)
            for service in ("", "streamer.v1.Streamer"):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                assert reply.status == SERVING
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await health.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=5)
            assert info.value.code() == grpc.StatusCode.NOT_FOUND
            watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
            assert (await watch.read()).status == SERVING
            engine.stop()
            assert (await health.Check(health_pb2.HealthCheckRequest(), timeout=5)).status == NOT_SERVING
            assert (await asyncio.wait_for(watch.read(), 5)).status == NOT_SERVING
            watch.cancel()

    run(main())


def test_health_is_not_serving_while_draining():
    async def main():
        async with grpc_test_server() as t:
            health = health_pb2_grpc.HealthStub(t.channel)
            await t.server.hub.drain(0.0)
            assert (await health.Check(health_pb2.HealthCheckRequest(), timeout=5)).status == NOT_SERVING

    run(main())


def test_reflection_lists_and_describes_the_service():
    async def main():
        async with grpc_test_server() as t:
            stub = reflection_pb2_grpc.ServerReflectionStub(t.channel)
            call = stub.ServerReflectionInfo()
            await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
            listed = await call.read()
            names = {s.name for s in listed.list_services_response.service}
            assert {"streamer.v1.Streamer", "grpc.health.v1.Health"} <= names
            await call.write(
                reflection_pb2.ServerReflectionRequest(file_containing_symbol="streamer.v1.Streamer")
            )
            files = (await call.read()).file_descriptor_response.file_descriptor_proto
            from google.protobuf import descriptor_pb2

            proto = descriptor_pb2.FileDescriptorProto.FromString(files[0])
            assert proto.package == "streamer.v1" and proto.name == "streamer/v1/streamer.proto"
            assert [m.name for m in proto.service[0].method] == ["Live", "Ask", "Summarize"]
            await call.done_writing()

    run(main())


def test_api_key_required_when_set():
    async def main():
        async with grpc_test_server(FakeEngine(answer="ok"), api_key="s3cret") as t:
            req = pb.AskRequest(prompt="q")
            for metadata in (None, (("authorization", "Bearer wrong"),), (("x-api-key", "s3cre"),)):
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await t.stub.Ask(req, timeout=5, metadata=metadata)
                assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert dict(info.value.trailing_metadata())[CODE_KEY] == "unauthorized"
            for metadata in ((("authorization", "Bearer s3cret"),), (("x-api-key", "s3cret"),)):
                assert (await t.stub.Ask(req, timeout=5, metadata=metadata)).text == "ok"
            # streams too: refused before any message is handled
            live = t.stub.Live()
            await live.write(pb.LiveRequest(setup=pb.Setup()))
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await live.read()
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert t.server.hub.sessions == 0
            # health stays open (probes carry no key); reflection needs the key
            health = health_pb2_grpc.HealthStub(t.channel)
            assert (await health.Check(health_pb2.HealthCheckRequest(), timeout=5)).status == SERVING
            refl = reflection_pb2_grpc.ServerReflectionStub(t.channel).ServerReflectionInfo()
            await refl.write(reflection_pb2.ServerReflectionRequest(list_services=""))
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await refl.read()
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED

    run(main())


def test_no_key_needed_on_loopback_without_one():
    async def main():
        async with grpc_test_server(FakeEngine(answer="open")) as t:
            assert (await t.stub.Ask(pb.AskRequest(prompt="q"), timeout=5)).text == "open"

    run(main())


def test_options_refuse_unsafe_or_bad_settings():
    with pytest.raises(InputError, match="API key"):
        GrpcOptions(host="0.0.0.0")
    GrpcOptions(host="0.0.0.0", api_key="k")  # fine with a key
    with pytest.raises(InputError, match="both"):
        GrpcOptions(tls_cert="cert.pem")
    with pytest.raises(InputError):
        GrpcOptions(port=70_000)


def test_from_serve_options_and_a_busy_port():
    limits = ServeLimits(max_message_bytes=1 << 20)
    opts = GrpcOptions.from_serve(ServeOptions(host="127.0.0.1", grpc_port=0, api_key="k", limits=limits))
    assert (opts.port, opts.api_key, opts.limits) == (0, "k", limits)
    assert opts.max_message_bytes == (1 << 20) + (1 << 20)

    async def main():
        engine = FakeEngine()
        engine.start()
        try:
            first = await start_grpc_server(engine, ServeOptions(grpc_port=0))
            try:
                with pytest.raises(InputError, match="cannot listen"):
                    await start_grpc_server(engine, GrpcOptions(port=first.port))
            finally:
                await first.stop(0)
        finally:
            engine.stop()

    run(main())


def test_client_errors_convert_to_the_streamer_tree():
    async def main():
        async with grpc_test_server() as t:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await t.stub.Ask(pb.AskRequest(prompt=""), timeout=5)
            err = error_from_rpc(info.value)
            assert isinstance(err, InputError) and err.code == "invalid_input"
            assert "INVALID_ARGUMENT" in str(err)

    run(main())


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_tls(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    engine = FakeEngine(answer="secure")

    async def main():
        engine.start()
        server = await start_grpc_server(engine, GrpcOptions(port=0, tls_cert=str(cert), tls_key=str(key)))
        try:
            creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
            async with grpc.aio.secure_channel(f"localhost:{server.port}", creds) as channel:
                reply = await pb_grpc.StreamerStub(channel).Ask(pb.AskRequest(prompt="q"), timeout=10)
                assert reply.text == "secure"
            async with grpc.aio.insecure_channel(f"localhost:{server.port}") as channel:
                with pytest.raises(grpc.aio.AioRpcError) as info:  # plaintext is refused
                    await pb_grpc.StreamerStub(channel).Ask(pb.AskRequest(prompt="q"), timeout=5)
                assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            await server.stop(0)
            engine.stop()

    run(main())


def test_serve_options_carry_the_summarize_dir_to_grpc(tmp_path):
    from streamer.serve.grpc_server import GrpcOptions
    from streamer.serve.options import ServeOptions

    assert GrpcOptions.from_serve(ServeOptions()).summarize_dir is None
    assert GrpcOptions.from_serve(ServeOptions(summarize_dir=str(tmp_path))).summarize_dir == str(tmp_path)
