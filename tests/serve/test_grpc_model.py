"""gRPC end to end on the real engine with the bundled model: Ask, Live, deadlines, Summarize,
and `streamer serve` as a subprocess (its gRPC side)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from streamer.engine.fake import FakeEngine
from streamer.media.image import encode_png
from streamer.serve.grpc_errors import CODE_KEY
from streamer.serve.grpc_testing import grpc_test_server
from streamer.serve.proto.streamer.v1 import streamer_pb2 as pb
from streamer.serve.proto.streamer.v1 import streamer_pb2_grpc as pb_grpc

pytestmark = pytest.mark.timeout(180)


def run(coro, timeout: float = 120.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture(scope="module")
def engine(bundled):
    from streamer.engine.engine import Engine

    loaded, tok = bundled
    engine = Engine(loaded, tok)
    engine.start()
    yield engine
    engine.stop()


def picture(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return encode_png(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))


def pcm(seconds: float, rate: int = 16_000) -> bytes:
    return (np.sin(np.arange(int(seconds * rate)) * 0.07) * 6000).astype("<i2").tobytes()


def test_ask_on_the_model(engine):
    async def main():
        async with grpc_test_server(engine) as t:
            req = pb.AskRequest(
                prompt="Is the gripper holding the cup?",
                images=[pb.Frame(data=picture(0), t_s=0.0), pb.Frame(data=picture(1), t_s=0.5)],
                audio=pb.Audio(data=pcm(1.0, 48_000), sample_rate=48_000),
                choices=["yes", "no"],
            )
            reply = await t.stub.Ask(req, timeout=60)
            assert reply.text in ("yes", "no") and reply.finish_reason == pb.FINISH_REASON_CHOICE
            assert reply.context_tokens > 2 * 70 and reply.HasField("ttft_s")
            assert reply.engine_s <= reply.server_s
            free = await t.stub.Ask(
                pb.AskRequest(prompt="Say something.", sampling=pb.SamplingParams(max_new_tokens=4)),
                timeout=60,
            )
            assert 1 <= free.tokens <= 4
            assert engine.num_sessions == 0

    run(main())


def test_live_on_the_model(engine):
    async def main():
        async with grpc_test_server(engine) as t:
            call = t.stub.Live()
            await call.write(
                pb.LiveRequest(seq=1, setup=pb.Setup(system_prompt="You watch a camera.", fps=2))
            )
            ready = await call.read()
            assert ready.WhichOneof("message") == "ready"
            for i in range(4):
                await call.write(pb.LiveRequest(seq=2 + 2 * i, frame=pb.Frame(data=picture(i), t_s=i * 0.5)))
                await call.write(pb.LiveRequest(seq=3 + 2 * i, audio=pb.Audio(data=pcm(0.5), t_s=i * 0.5)))
            q = pb.Question(question="What changed?", sampling=pb.SamplingParams(max_new_tokens=6))
            await call.write(pb.LiveRequest(seq=20, ask=q))
            got = []
            while True:
                msg = await asyncio.wait_for(call.read(), 60)
                got.append(msg)
                if msg.WhichOneof("message") == "answer_done":
                    break
            done = got[-1].answer_done
            assert (
                done.finish_reason in (pb.FINISH_REASON_STOP, pb.FINISH_REASON_LENGTH)
                and 1 <= done.tokens <= 6
            )
            text = "".join(m.answer_delta.text for m in got if m.WhichOneof("message") == "answer_delta")
            assert isinstance(text, str)
            await call.write(pb.LiveRequest(seq=21, close=pb.Close()))
            rest = []
            while (msg := await asyncio.wait_for(call.read(), 30)) is not grpc.aio.EOF:
                rest.append(msg)
            stats = [m.stats for m in got + rest if m.WhichOneof("message") == "stats"][-1]
            assert stats.frames == 4 and stats.audio_s >= 1.9 and stats.last_consumed_seq == 20
            assert await call.code() == grpc.StatusCode.OK

    run(main())


def test_ask_deadline_on_the_model(engine):
    async def main():
        saved = engine.stop_ids
        engine.stop_ids = frozenset()  # random weights: decode the full length
        try:
            async with grpc_test_server(engine) as t:
                req = pb.AskRequest(prompt="Talk.", sampling=pb.SamplingParams(max_new_tokens=1000))
                started = time.perf_counter()
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await t.stub.Ask(req, timeout=0.3)
                assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                assert time.perf_counter() - started < 1.0
                end = time.monotonic() + 5
                while engine.num_sessions and time.monotonic() < end:
                    await asyncio.sleep(0.01)
                assert engine.num_sessions == 0
                await asyncio.sleep(0.2)  # a decode step already running for it may finish
                before = engine.metrics.generated_tokens
                await asyncio.sleep(0.3)
                assert engine.metrics.generated_tokens == before  # nothing decodes for the dead call
        finally:
            engine.stop_ids = saved

    run(main())


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    from streamer.media.synth import write_synthetic_recording

    folder = tmp_path_factory.mktemp("recordings")
    return write_synthetic_recording(folder / "meeting.mp4", minutes=0.2, size=(96, 64), fps=5, slide_s=4)


def _start(**fields) -> pb.SummarizeRequest:
    return pb.SummarizeRequest(
        start=pb.SummarizeStart(chunk_minutes=0.1, note_tokens=6, summary_tokens=8, **fields)
    )


async def _summarize(stub, requests) -> list[pb.SummarizeEvent]:
    return [event async for event in stub.Summarize(iter(requests), timeout=120)]


def test_summarize_upload(engine, recording):
    async def main():
        async with grpc_test_server(engine) as t:
            data = recording.read_bytes()
            chunks = [data[i : i + 64_000] for i in range(0, len(data), 64_000)]
            events = await _summarize(
                t.stub, [_start(upload_name="meeting.mp4"), *(pb.SummarizeRequest(data=c) for c in chunks)]
            )
            kinds = [e.WhichOneof("event") for e in events]
            assert kinds[-1] == "result" and "progress" in kinds and kinds.count("note") == 2
            result = json.loads(events[-1].result.json)
            assert result["duration_s"] == pytest.approx(12.0, abs=0.5) and len(result["notes"]) == 2
            assert events[-1].result.markdown.startswith("# ")
            assert engine.num_sessions == 0

    run(main())


def test_summarize_server_path_only_under_the_allowed_dir(engine, recording):
    async def main():
        async with grpc_test_server(engine) as t:  # no summarize_dir: uploads only
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await _summarize(t.stub, [_start(path=str(recording))])
            assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert dict(info.value.trailing_metadata())[CODE_KEY] == "path_not_allowed"
        async with grpc_test_server(engine, summarize_dir=str(recording.parent)) as t:
            events = await _summarize(t.stub, [_start(path="meeting.mp4")])
            assert events[-1].WhichOneof("event") == "result"
            for bad in ("../meeting.mp4", "/etc/passwd", str(recording.parent.parent)):
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await _summarize(t.stub, [_start(path=bad)])
                assert info.value.code() in (
                    grpc.StatusCode.PERMISSION_DENIED,
                    grpc.StatusCode.INVALID_ARGUMENT,
                )
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await _summarize(t.stub, [_start(path="missing.mp4")])
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            with pytest.raises(grpc.aio.AioRpcError) as info:  # not a start first
                await _summarize(t.stub, [pb.SummarizeRequest(data=b"x")])
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    run(main())


def test_summarize_refusals_without_a_model_or_with_a_bad_upload(engine, tmp_path):
    async def main():
        async with grpc_test_server(FakeEngine()) as t:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await _summarize(t.stub, [_start(upload_name="x.mp4")])
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        async with grpc_test_server(engine, max_upload_bytes=1000) as t:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await _summarize(t.stub, [_start(upload_name="x.mp4"), pb.SummarizeRequest(data=bytes(2000))])
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            with pytest.raises(grpc.aio.AioRpcError) as info:  # not media
                await _summarize(
                    t.stub, [_start(upload_name="x.mp4"), pb.SummarizeRequest(data=b"junk" * 10)]
                )
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert engine.num_sessions == 0

    run(main())


def test_streamer_serve_subprocess_serves_grpc(bundled_dir, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "GRPC_VERBOSITY": "ERROR"}
    command = [
        sys.executable,
        "-m",
        "streamer",
        "serve",
        "--http-port",
        "0",
        "--grpc-port",
        "0",
        "--grace-s",
        "1",
    ]
    with (
        (tmp_path / "stderr.txt").open("w+") as err,
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True, env=env) as proc,
    ):
        try:
            line = proc.stdout.readline()
            match = re.search(r"grpc on 127\.0\.0\.1:(\d+)", line)
            assert match, (line, (tmp_path / "stderr.txt").read_text())
            target = f"127.0.0.1:{match.group(1)}"

            async def main():
                async with grpc.aio.insecure_channel(target) as channel:
                    health = health_pb2_grpc.HealthStub(channel)
                    status = await health.Check(health_pb2.HealthCheckRequest(), timeout=30)
                    assert status.status == health_pb2.HealthCheckResponse.SERVING
                    stub = pb_grpc.StreamerStub(channel)
                    reply = await stub.Ask(
                        pb.AskRequest(
                            prompt="Ready?", images=[pb.Frame(data=picture(3))], choices=["yes", "no"]
                        ),
                        timeout=60,
                    )
                    assert reply.text in ("yes", "no")

            run(main())
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def test_summarize_client_cancel_stops_the_run(engine, recording):
    async def main():
        async with grpc_test_server(engine, summarize_dir=str(recording.parent)) as t:
            call = t.stub.Summarize(iter([_start(path="meeting.mp4")]))
            first = await asyncio.wait_for(call.read(), 60)
            assert first.WhichOneof("event") == "progress"
            call.cancel()
            end = time.monotonic() + 60
            while engine.num_sessions and time.monotonic() < end:
                await asyncio.sleep(0.05)
            assert engine.num_sessions == 0
            # the slot is freed once the worker has stopped: a new summary runs
            for _ in range(50):
                try:
                    events = await _summarize(t.stub, [_start(path="meeting.mp4")])
                    break
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                    await asyncio.sleep(0.1)
            assert events[-1].WhichOneof("event") == "result"

    run(main())
