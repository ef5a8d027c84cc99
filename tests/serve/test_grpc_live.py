"""The gRPC ``Live`` stream on the fake engine: a full exchange and every error path."""

from __future__ import annotations

import asyncio
import time

import grpc
import numpy as np
import pytest

from streamer.engine.fake import FakeEngine
from streamer.media.image import encode_png
from streamer.serve.grpc_errors import CODE_KEY
from streamer.serve.grpc_testing import grpc_test_server
from streamer.serve.hub import LiveHub
from streamer.serve.limits import ServeLimits
from streamer.serve.proto.streamer.v1 import streamer_pb2 as pb

pytestmark = pytest.mark.timeout(60)

PNG = encode_png(np.full((24, 32, 3), 100, np.uint8))
LONG = " ".join(f"w{i}" for i in range(400))


def run(coro, timeout: float = 30.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def kind(msg: pb.LiveResponse) -> str:
    return msg.WhichOneof("message")


async def read_until(call, predicate, timeout: float = 5.0) -> list[pb.LiveResponse]:
    """Messages up to and including the first one matching ``predicate``."""
    out = []
    while True:
        msg = await asyncio.wait_for(call.read(), timeout)
        assert msg is not grpc.aio.EOF, f"stream ended early after {[kind(m) for m in out]}"
        out.append(msg)
        if predicate(msg):
            return out


async def rest(call, timeout: float = 5.0) -> list[pb.LiveResponse]:
    """Every message until the server ends the stream (its status: ``await call.code()``)."""
    out = []
    try:
        while (msg := await asyncio.wait_for(call.read(), timeout)) is not grpc.aio.EOF:
            out.append(msg)
    except grpc.aio.AioRpcError:
        pass  # the stream ended with an error status
    return out


async def wait_until(predicate, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()


def s16(seconds: float, rate: int = 16_000) -> bytes:
    return (np.sin(np.arange(int(seconds * rate)) * 0.05) * 8000).astype("<i2").tobytes()


async def open_live(t, setup: pb.Setup | None = None, metadata=None):
    call = t.stub.Live(metadata=metadata)
    await call.write(pb.LiveRequest(seq=1, setup=setup or pb.Setup()))
    ready = await read_until(call, lambda m: kind(m) == "ready")
    return call, ready[-1].ready


def test_full_exchange_then_close():
    engine = FakeEngine(answer="left")

    async def main():
        async with grpc_test_server(engine) as t:
            call, ready = await open_live(t, pb.Setup(system_prompt="You steer.", fps=5))
            assert ready.session_id.startswith("sess_") and ready.seq == 1
            assert (
                ready.limits.max_message_bytes == ServeLimits().max_message_bytes
                and ready.max_context_tokens > 0
            )
            rgb = np.zeros((8, 8, 3), np.uint8).tobytes()
            await call.write(
                pb.LiveRequest(seq=2, frame=pb.Frame(data=PNG, format=pb.IMAGE_FORMAT_PNG, t_s=0.0))
            )
            await call.write(
                pb.LiveRequest(seq=3, audio=pb.Audio(data=s16(0.5), sample_rate=16_000, t_s=0.0))
            )
            await call.write(pb.LiveRequest(seq=4, frame=pb.Frame(data=rgb, width=8, height=8, t_s=0.4)))
            await call.write(pb.LiveRequest(seq=5, text=pb.Text(text="The robot is Bob.")))
            await call.write(
                pb.LiveRequest(seq=6, ask=pb.Question(question="Which way?", choices=["left", "right"]))
            )
            got = await read_until(call, lambda m: kind(m) == "answer_done")
            deltas = [m.answer_delta for m in got if kind(m) == "answer_delta"]
            done = got[-1].answer_done
            assert "".join(d.text for d in deltas) == "left"
            assert done.finish_reason == pb.FINISH_REASON_CHOICE and done.seq == 6 and done.tokens == 1
            assert done.request_id == deltas[0].request_id and done.HasField("latency_s")
            stats = (await read_until(call, lambda m: kind(m) == "stats"))[-1].stats
            assert stats.session_id == ready.session_id and stats.frames == 2 and stats.last_consumed_seq == 6
            assert stats.audio_s > 0 and stats.last_received_seq == 6
            history = engine.history(ready.session_id)
            assert history[0] == "frame@0" and history[-2:] == [
                "user:The robot is Bob.",
                "question:Which way?",
            ]
            await call.write(pb.LiveRequest(seq=7, close=pb.Close()))
            last = await rest(call)
            assert [kind(m) for m in last][-1] == "stats"
            assert await call.code() == grpc.StatusCode.OK
            assert await wait_until(lambda: engine.num_sessions == 0)

    run(main())


def test_half_close_finishes_the_running_answer():
    async def main():
        async with grpc_test_server(FakeEngine(answer="a b c d e", step_delay_s=0.005)) as t:
            call, _ = await open_live(t)
            await call.write(pb.LiveRequest(ask=pb.Question(question="q")))
            await call.done_writing()
            got = await rest(call)
            done = [m.answer_done for m in got if kind(m) == "answer_done"]
            assert len(done) == 1 and done[0].finish_reason == pb.FINISH_REASON_STOP
            assert "".join(m.answer_delta.text for m in got if kind(m) == "answer_delta") == "a b c d e"
            assert await call.code() == grpc.StatusCode.OK

    run(main())


def test_input_before_setup_is_a_protocol_violation():
    async def main():
        async with grpc_test_server() as t:
            call = t.stub.Live()
            await call.write(pb.LiveRequest(seq=1, frame=pb.Frame(data=PNG)))
            got = await rest(call)
            assert kind(got[-1]) == "error" and got[-1].error.fatal
            assert got[-1].error.code == "protocol_violation" and got[-1].error.seq == 1
            assert await call.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert dict(await call.trailing_metadata())[CODE_KEY] == "protocol_violation"

    run(main())


def test_bad_messages_get_error_events_and_the_stream_goes_on():
    limits = ServeLimits(max_message_bytes=64 << 10, min_sample_rate=8_000)

    async def main():
        async with grpc_test_server(FakeEngine(answer="fine"), limits=limits) as t:
            call, _ = await open_live(t)
            bad = [
                (pb.LiveRequest(seq=2), "bad_message"),  # no message set
                (pb.LiveRequest(seq=3, frame=pb.Frame(data=b"garbage", t_s=0.0)), "unsupported_media"),
                (pb.LiveRequest(seq=4, frame=pb.Frame(data=PNG, format=pb.IMAGE_FORMAT_JPEG)), "unsupported_media"),
                (pb.LiveRequest(seq=5, frame=pb.Frame(data=b"\xff\xd8\xff" + bytes(100 << 10))), "message_too_large"),
                (pb.LiveRequest(seq=6, audio=pb.Audio(data=s16(0.1, 4000), sample_rate=4000)), "unsupported_media"),
                (pb.LiveRequest(seq=7, audio=pb.Audio(data=b"\1\2\3")), "invalid_input"),
                (pb.LiveRequest(seq=7, text=pb.Text(text="repeated seq")), "bad_seq"),
                (pb.LiveRequest(seq=8, text=pb.Text(text="x", role="robot")), "invalid_input"),
                (pb.LiveRequest(seq=9, ask=pb.Question(question="")), "invalid_input"),
                (pb.LiveRequest(seq=10, ask=pb.Question(question="q", sampling=pb.SamplingParams(top_p=0))), "invalid_input"),
                (pb.LiveRequest(seq=11, setup=pb.Setup()), "protocol_violation"),
            ]  # fmt: skip
            for request, code in bad[:-1]:
                await call.write(request)
                error = (await read_until(call, lambda m: kind(m) == "error"))[-1].error
                assert (error.code, error.seq, error.fatal) == (code, request.seq, False), error.message
            await call.write(pb.LiveRequest(seq=12, ask=pb.Question(question="still there?")))
            done = (await read_until(call, lambda m: kind(m) == "answer_done"))[-1].answer_done
            assert done.finish_reason == pb.FINISH_REASON_STOP
            request, code = bad[-1]  # a second setup ends the stream
            await call.write(pb.LiveRequest(seq=13, setup=pb.Setup()))
            got = await rest(call)
            assert got[-1].error.code == "protocol_violation" and got[-1].error.fatal
            assert await call.code() == grpc.StatusCode.FAILED_PRECONDITION

    run(main())


def test_malformed_bytes_mid_stream_are_a_bad_message_event():
    async def main():
        async with grpc_test_server(FakeEngine(answer="ok")) as t:
            raw = t.channel.stream_stream("/streamer.v1.Streamer/Live")
            call = raw()
            await call.write(pb.LiveRequest(setup=pb.Setup()).SerializeToString())
            await call.write(b"\xff\xff\xff\xff\x0f")
            await call.write(pb.LiveRequest(ask=pb.Question(question="q")).SerializeToString())
            kinds, codes = [], []
            while "answer_done" not in kinds:
                msg = pb.LiveResponse.FromString(await asyncio.wait_for(call.read(), 5))
                kinds.append(kind(msg))
                if kind(msg) == "error":
                    codes.append(msg.error.code)
            assert codes == ["bad_message"] and kinds[0] == "ready"
            call.cancel()

    run(main())


def test_oversized_grpc_message_ends_only_that_stream():
    limits = ServeLimits(max_message_bytes=64 << 10)

    async def main():
        async with grpc_test_server(FakeEngine(answer="ok"), limits=limits) as t:
            other, _ = await open_live(t)
            call, _ = await open_live(t)
            await call.write(pb.LiveRequest(frame=pb.Frame(data=bytes(2 << 20))))  # over 64 KiB + 1 MiB
            await rest(call)
            assert await call.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            await other.write(pb.LiveRequest(ask=pb.Question(question="q")))
            done = (await read_until(other, lambda m: kind(m) == "answer_done"))[-1].answer_done
            assert done.finish_reason == pb.FINISH_REASON_STOP
            other.cancel()

    run(main())


def test_cancel_stops_the_answer():
    engine = FakeEngine(answer=LONG, step_delay_s=0.01)

    async def main():
        async with grpc_test_server(engine) as t:
            call, _ = await open_live(t)
            await call.write(pb.LiveRequest(ask=pb.Question(question="long", request_id="r1")))
            await read_until(call, lambda m: kind(m) == "answer_delta")
            await call.write(pb.LiveRequest(cancel=pb.Cancel(request_id="r1")))
            done = (await read_until(call, lambda m: kind(m) == "answer_done"))[-1].answer_done
            assert done.request_id == "r1" and done.finish_reason == pb.FINISH_REASON_CANCELLED
            assert done.tokens < 400
            call.cancel()

    run(main())


def test_client_disconnect_mid_answer_cancels_it():
    engine = FakeEngine(answer=LONG, step_delay_s=0.01)

    async def main():
        async with grpc_test_server(engine) as t:
            call, ready = await open_live(t)
            await call.write(
                pb.LiveRequest(
                    ask=pb.Question(question="long", sampling=pb.SamplingParams(max_new_tokens=1000))
                )
            )
            await read_until(call, lambda m: kind(m) == "answer_delta")
            call.cancel()  # the client goes away
            assert await wait_until(lambda: engine.num_sessions == 0)
            await asyncio.sleep(0.05)  # a step already running for it may finish
            generated = engine.metrics.generated_tokens
            await asyncio.sleep(0.1)
            assert engine.metrics.generated_tokens == generated < 400
            # and the server serves the next client
            call2, _ = await open_live(t)
            await call2.write(pb.LiveRequest(close=pb.Close()))
            assert [kind(m) for m in await rest(call2)] == ["stats"]
            assert await call2.code() == grpc.StatusCode.OK

    run(main())


def test_session_closed_by_the_engine_ends_the_stream():
    engine = FakeEngine(answer="ok")

    async def main():
        async with grpc_test_server(engine) as t:
            call, ready = await open_live(t)
            engine.get_session(ready.session_id).close()  # e.g. the engine expired it
            got = await rest(call)
            assert got[-1].error.code == "session_closed" and got[-1].error.fatal
            assert await call.code() == grpc.StatusCode.NOT_FOUND

    run(main())


def test_idle_timeout_and_session_limit():
    limits = ServeLimits(idle_timeout_s=0.3, max_sessions=1)

    async def main():
        async with grpc_test_server(FakeEngine(answer="ok"), limits=limits) as t:
            call, _ = await open_live(t)
            second = t.stub.Live()
            await second.write(pb.LiveRequest(setup=pb.Setup()))
            got = await rest(second)
            assert got[-1].error.code == "session_limit"
            assert await second.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            got = await rest(call)  # nothing sent for 0.3 s
            assert got[-1].error.code == "idle_timeout" and got[-1].error.fatal
            assert await call.code() == grpc.StatusCode.ABORTED

    run(main())


def test_drain_sends_go_away_then_unavailable():
    engine = FakeEngine(answer=LONG, step_delay_s=0.01)

    async def main():
        hub_holder = {}

        async with grpc_test_server(engine) as t:
            hub: LiveHub = t.server.hub
            hub_holder["hub"] = hub
            call, _ = await open_live(t)
            await call.write(
                pb.LiveRequest(
                    ask=pb.Question(question="long", sampling=pb.SamplingParams(max_new_tokens=1000))
                )
            )
            await read_until(call, lambda m: kind(m) == "answer_delta")
            drain = asyncio.ensure_future(hub.drain(0.2))
            got = await rest(call)
            await drain
            kinds = [kind(m) for m in got]
            assert "go_away" in kinds and got[-1].error.code == "going_away"
            assert await call.code() == grpc.StatusCode.UNAVAILABLE
            with pytest.raises(grpc.aio.AioRpcError) as info:  # no new questions while draining
                await t.stub.Ask(pb.AskRequest(prompt="q"), timeout=5)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE

    run(main())


def test_a_violating_stream_does_not_disturb_another():
    async def main():
        async with grpc_test_server(FakeEngine(answer="steady")) as t:
            good, _ = await open_live(t)
            for _ in range(5):
                bad = t.stub.Live()
                await bad.write(pb.LiveRequest(ask=pb.Question(question="before setup")))
                await rest(bad)  # gRPC delivers the status once the messages before it are read
                assert await bad.code() == grpc.StatusCode.FAILED_PRECONDITION
            await good.write(pb.LiveRequest(ask=pb.Question(question="q")))
            got = await read_until(good, lambda m: kind(m) == "answer_done")
            assert "".join(m.answer_delta.text for m in got if kind(m) == "answer_delta") == "steady"
            good.cancel()

    run(main())
