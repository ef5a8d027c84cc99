"""The gRPC ``Ask`` call on the fake engine: answers, every error path, deadlines, cancellation."""

from __future__ import annotations

import asyncio
import struct
import time
import zlib

import grpc
import numpy as np
import pytest

from streamer.engine.fake import FakeEngine
from streamer.engine.runtime import EngineConfig
from streamer.media.image import encode_png
from streamer.serve.grpc_errors import CODE_KEY
from streamer.serve.grpc_testing import grpc_test_server
from streamer.serve.limits import ServeLimits
from streamer.serve.proto.streamer.v1 import streamer_pb2 as pb

pytestmark = pytest.mark.timeout(60)

PNG = encode_png(np.full((24, 32, 3), 128, np.uint8))
LONG = " ".join(f"w{i}" for i in range(400))  # 400 fake tokens


def run(coro, timeout: float = 30.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def code_of(exc: grpc.aio.AioRpcError) -> str | None:
    return dict(exc.trailing_metadata() or ()).get(CODE_KEY)


def huge_png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def s16(seconds: float, rate: int = 16_000, channels: int = 1) -> bytes:
    n = int(seconds * rate)
    wave = (np.sin(np.arange(n) / rate * 2 * np.pi * 440) * 8000).astype("<i2")
    return np.repeat(wave, channels).tobytes()


async def _wait_until(predicate, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()


def test_ask_answers_with_choices_and_figures():
    async def main():
        async with grpc_test_server(FakeEngine(answer="no")) as t:
            reply = await t.stub.Ask(
                pb.AskRequest(
                    prompt="Is the gripper closed?", images=[pb.Frame(data=PNG)], choices=["yes", "no"]
                ),
                timeout=5,
            )
            assert reply.text == "no"
            assert reply.finish_reason == pb.FINISH_REASON_CHOICE
            assert reply.tokens == 1 and reply.HasField("ttft_s")
            assert 0 < reply.engine_s <= reply.server_s
            assert reply.request_id.startswith("req_")
            assert t.engine.num_sessions == 0  # the call's session is closed

    run(main())


def test_ask_media_reach_the_engine():
    async def main():
        async with grpc_test_server(FakeEngine(answer="ok")) as t:
            bare = await t.stub.Ask(pb.AskRequest(prompt="q"), timeout=5)
            rgb = np.zeros((8, 8, 3), np.uint8).tobytes()
            full = await t.stub.Ask(
                pb.AskRequest(
                    prompt="q",
                    images=[
                        pb.Frame(data=PNG, t_s=0.0),
                        pb.Frame(data=rgb, format=pb.IMAGE_FORMAT_RGB, width=8, height=8, t_s=0.5),
                    ],
                    audio=pb.Audio(data=s16(1.0, 48_000, 2), sample_rate=48_000, channels=2),
                ),
                timeout=5,
            )
            # the fake engine counts 82 tokens per picture and 40 ms frames + 2 per audio segment (1 s)
            assert full.context_tokens - bare.context_tokens == 2 * 82 + 25 + 2

    run(main())


@pytest.mark.parametrize(
    "request_kwargs, status, code",
    [
        ({"images": [pb.Frame(data=b"not an image")]}, grpc.StatusCode.INVALID_ARGUMENT, "unsupported_media"),
        ({"images": [pb.Frame(data=PNG[:40])]}, grpc.StatusCode.INVALID_ARGUMENT, "unsupported_media"),
        ({"images": [pb.Frame(data=huge_png_header(20_000, 20_000))]}, grpc.StatusCode.INVALID_ARGUMENT, "unsupported_media"),
        (
            {"images": [pb.Frame(data=b"\0" * 10, format=pb.IMAGE_FORMAT_RGB, width=4, height=4)]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid_input",
        ),
        ({"images": [pb.Frame(data=PNG)] * 17}, grpc.StatusCode.INVALID_ARGUMENT, "invalid_input"),
        (
            {"images": [pb.Frame(data=PNG, t_s=2.0), pb.Frame(data=PNG, t_s=1.0)]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid_input",
        ),
        ({"audio": pb.Audio(data=s16(0.1, 500), sample_rate=500)}, grpc.StatusCode.INVALID_ARGUMENT, "unsupported_media"),
        ({"audio": pb.Audio(data=b"\1\2\3", sample_rate=16_000)}, grpc.StatusCode.INVALID_ARGUMENT, "invalid_input"),
        ({"audio": pb.Audio(data=s16(0.1), channels=1000)}, grpc.StatusCode.INVALID_ARGUMENT, "unsupported_media"),
        ({"prompt": ""}, grpc.StatusCode.INVALID_ARGUMENT, "invalid_input"),
        ({"prompt": "x" * 20_000}, grpc.StatusCode.INVALID_ARGUMENT, "invalid_input"),
        ({"sampling": pb.SamplingParams(max_new_tokens=100_000)}, grpc.StatusCode.INVALID_ARGUMENT, "invalid_input"),
        ({"sampling": pb.SamplingParams(temperature=-1)}, grpc.StatusCode.INVALID_ARGUMENT, "invalid_input"),
        ({"choices": [""]}, grpc.StatusCode.INVALID_ARGUMENT, "invalid_input"),
        ({"prompt": "please fail"}, grpc.StatusCode.INTERNAL, "model_error"),
    ],
    ids=[
        "garbage-image", "truncated-png", "huge-dimensions", "rgb-wrong-size", "too-many-images",
        "images-out-of-order", "audio-rate", "audio-partial-sample", "audio-channels", "empty-prompt",
        "long-prompt", "max-tokens-over-limit", "bad-temperature", "empty-choice", "model-error",
    ],
)  # fmt: skip
def test_ask_errors_have_status_and_stable_code(request_kwargs, status, code):
    async def main():
        async with grpc_test_server(FakeEngine(fail_on="fail")) as t:
            req = pb.AskRequest(**{"prompt": "Anything?", **request_kwargs})
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await t.stub.Ask(req, timeout=5)
            assert info.value.code() == status, info.value.details()
            assert code_of(info.value) == code
            assert info.value.details().startswith(f"[{code}] ")
            ok = await t.stub.Ask(pb.AskRequest(prompt="still there?"), timeout=5)  # the server is fine
            assert ok.finish_reason == pb.FINISH_REASON_STOP
            assert await _wait_until(lambda: t.engine.num_sessions == 0)

    run(main())


def test_ask_malformed_bytes_is_bad_message():
    async def main():
        async with grpc_test_server() as t:
            raw = t.channel.unary_unary("/streamer.v1.Streamer/Ask")
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await raw(b"\xff\xff\xff\xff", timeout=5)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert code_of(info.value) == "bad_message"

    run(main())


def test_ask_oversized_message():
    limits = ServeLimits(max_message_bytes=64 << 10)

    async def main():
        async with grpc_test_server(limits=limits) as t:
            # over the payload limit, under the transport cap: a clear refusal with a stable code
            big = pb.Frame(data=b"\xff\xd8\xff" + b"\0" * (100 << 10))
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await t.stub.Ask(pb.AskRequest(prompt="q", images=[big]), timeout=5)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert code_of(info.value) == "message_too_large"
            # over the transport cap (payload limit + 1 MiB): gRPC refuses it before any handler
            huge = pb.Frame(data=b"\0" * (2 << 20))
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await t.stub.Ask(pb.AskRequest(prompt="q", images=[huge]), timeout=5)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert (await t.stub.Ask(pb.AskRequest(prompt="q"), timeout=5)).text

    run(main())


def test_ask_deadline_exceeded_cancels_the_engine_work():
    engine = FakeEngine(answer=LONG, step_delay_s=0.01)

    async def main():
        async with grpc_test_server(engine) as t:
            started = time.perf_counter()
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await t.stub.Ask(
                    pb.AskRequest(prompt="long", sampling=pb.SamplingParams(max_new_tokens=1000)), timeout=0.3
                )
            elapsed = time.perf_counter() - started
            assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert elapsed < 0.6  # no late work: the call ends at its deadline
            assert await _wait_until(lambda: engine.num_sessions == 0)
            await asyncio.sleep(0.05)  # a step already running for it may finish
            generated = engine.metrics.generated_tokens
            assert generated < 400  # the answer was stopped, not finished
            await asyncio.sleep(0.1)
            assert engine.metrics.generated_tokens == generated  # and nothing runs any more

    run(main())


def test_ask_server_cap_without_deadline():
    engine = FakeEngine(answer=LONG, step_delay_s=0.01)

    async def main():
        async with grpc_test_server(engine, max_ask_s=0.2) as t:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await t.stub.Ask(
                    pb.AskRequest(prompt="long", sampling=pb.SamplingParams(max_new_tokens=1000))
                )
            assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert code_of(info.value) == "deadline_exceeded"

    run(main())


def test_ask_client_cancel_stops_the_answer():
    engine = FakeEngine(answer=LONG, step_delay_s=0.01)

    async def main():
        async with grpc_test_server(engine) as t:
            call = t.stub.Ask(pb.AskRequest(prompt="long", sampling=pb.SamplingParams(max_new_tokens=1000)))
            assert await _wait_until(lambda: engine.metrics.generated_tokens > 0)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            assert await _wait_until(lambda: engine.num_sessions == 0)
            await asyncio.sleep(0.05)  # a step already running for it may finish
            generated = engine.metrics.generated_tokens
            await asyncio.sleep(0.1)
            assert engine.metrics.generated_tokens == generated < 400

    run(main())


def test_ask_session_limit_and_stopped_engine():
    engine = FakeEngine(answer=LONG, step_delay_s=0.01, config=EngineConfig(max_sessions=1))

    async def main():
        async with grpc_test_server(engine) as t:
            first = t.stub.Ask(pb.AskRequest(prompt="long"), timeout=5)
            assert await _wait_until(lambda: engine.num_sessions == 1)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await t.stub.Ask(pb.AskRequest(prompt="second"), timeout=5)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert code_of(info.value) == "session_limit"
            first.cancel()
            engine.stop()
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await t.stub.Ask(pb.AskRequest(prompt="after stop"), timeout=5)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert code_of(info.value) == "unavailable"

    run(main())


def test_one_failing_call_does_not_disturb_others():
    async def main():
        async with grpc_test_server(FakeEngine(answer="fine", fail_on="fail")) as t:
            calls = []
            for i in range(30):
                prompt = "fail now" if i % 3 == 0 else f"q{i}"
                images = [pb.Frame(data=b"junk")] if i % 3 == 1 else []
                calls.append(t.stub.Ask(pb.AskRequest(prompt=prompt, images=images), timeout=10))
            results = await asyncio.gather(*calls, return_exceptions=True)
            for i, result in enumerate(results):
                if i % 3 == 2:
                    assert result.text == "fine"
                else:
                    assert isinstance(result, grpc.aio.AioRpcError)

    run(main())
