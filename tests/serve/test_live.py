"""The live protocol core on the fake engine: no sockets, every error path, isolation, drain."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from streamer.engine.aio import AsyncEngine
from streamer.engine.fake import FakeEngine
from streamer.errors import ProtocolError
from streamer.serve.hub import LiveHub
from streamer.serve.limits import ServeLimits
from streamer.serve.live import CloseReason, LiveState
from streamer.serve.messages import (
    AnswerDelta,
    AnswerDone,
    AskMsg,
    Audio,
    CancelMsg,
    CloseMsg,
    Error,
    Frame,
    GoAway,
    Ready,
    Sampling,
    Setup,
    Stats,
    Text,
)

from .conftest import answer_done, collect, jpeg_bytes, make_hub, pcm_s16, run

pytestmark = pytest.mark.timeout(60)


async def _open(hub, **setup):
    proto = hub.connect("test")
    await proto.receive(Setup(seq=0, **setup))
    ready = await proto.next_message()
    assert isinstance(ready, Ready), ready
    return proto


def _errors(messages):
    return [m for m in messages if isinstance(m, Error)]


def test_stream_then_ask(fake):
    async def body():
        hub = make_hub(fake)
        proto = await _open(hub, system_prompt="Watch.")
        await proto.receive(Audio(pcm_s16(1.0), "s16le", 16_000, 1, 0.0, 1))
        await proto.receive(Frame(jpeg_bytes(), "jpeg", t_s=0.5, seq=2))
        await proto.receive(Audio(pcm_s16(1.0, rate=48_000, channels=2), "s16le", 48_000, 2, 1.0, 3))
        await proto.receive(Frame(bytes(32 * 24 * 3), "rgb", 32, 24, 1.5, 4))
        await proto.receive(Text("Alice operates the robot.", seq=5))
        await proto.receive(AskMsg("What happened?", request_id="q1", seq=6))
        out = await collect(proto, answer_done)
        deltas = [m for m in out if isinstance(m, AnswerDelta)]
        assert "".join(d.text for d in deltas) == "one two three four five six"
        assert all(d.request_id == "q1" for d in deltas)
        done = out[-1]
        assert done.finish_reason == "stop" and done.tokens == 6 and done.seq == 6 and done.ttft_s is not None
        assert not _errors(out)
        sid = proto.session.id
        history = fake.history(sid)
        assert history[0] == "user:Alice operates the robot." or history[0].startswith("audio@0")
        assert [h for h in history if h.startswith("frame@")] == ["frame@0.5", "frame@1.5"]
        assert history[-1] == "question:What happened?"
        await proto.receive(CloseMsg(seq=7))
        rest = await collect(proto, lambda m: False)
        stats = [m for m in rest if isinstance(m, Stats)][-1]
        assert stats.frames == 2 and stats.audio_s == pytest.approx(2.0, abs=0.05)
        assert stats.last_received_seq == 7
        assert proto.close_reason is CloseReason.NORMAL and await proto.next_message() is None
        await proto.connection_lost()
        assert fake.num_sessions == 0 and not hub.connections

    run(body())


def test_input_before_setup_is_a_protocol_violation(fake):
    async def body():
        proto = make_hub(fake).connect()
        await proto.receive(Text("hello", seq=1))
        out = await collect(proto, lambda m: False)
        assert len(out) == 1 and out[0].code == "protocol_violation" and out[0].fatal and out[0].seq == 1
        assert proto.close_reason is CloseReason.PROTOCOL_VIOLATION and proto.finished
        await proto.connection_lost()

    run(body())


def test_second_setup_is_a_protocol_violation(fake):
    async def body():
        proto = await _open(make_hub(fake))
        await proto.receive(Setup(seq=1))
        out = await collect(proto, lambda m: isinstance(m, Error))
        assert out[-1].code == "protocol_violation" and out[-1].fatal
        await proto.connection_lost()
        assert fake.num_sessions == 0

    run(body())


@pytest.mark.parametrize(
    "setup, fragment",
    [
        (dict(frame_soft_tokens=71), "frame_soft_tokens"),
        (dict(fps=0.0), "fps must be in"),
        (dict(fps=31.0), "fps must be in"),
        (dict(sampling=Sampling(temperature=-1.0)), "temperature"),
        (dict(sampling=Sampling(max_new_tokens=5000)), "max_new_tokens is over"),
    ],
)
def test_bad_setup_is_an_error_and_a_good_one_may_follow(fake, setup, fragment):
    async def body():
        proto = make_hub(fake).connect()
        await proto.receive(Setup(seq=0, **setup))
        (err,) = proto.pending()
        assert err.code == "invalid_input" and not err.fatal and fragment in err.message
        assert proto.state is LiveState.AWAITING_SETUP and fake.num_sessions == 0
        await proto.receive(Setup(seq=1))
        assert isinstance(await proto.next_message(), Ready)
        await proto.connection_lost()

    run(body())


@pytest.mark.parametrize(
    "message, code, fragment",
    [
        (Frame(b"garbage", "jpeg", seq=1), "unsupported_media", "not an image"),
        (
            Frame(jpeg_bytes(fmt="PNG"), "jpeg", seq=1),
            "unsupported_media",
            "declared jpeg but its bytes are png",
        ),
        (Frame(b"\xff\xd8\xff\xe0" + b"\x00" * 40, "jpeg", seq=1), "unsupported_media", "damaged JPEG"),
        (Frame(jpeg_bytes(5000, 8), "jpeg", seq=1), "unsupported_media", "over the limit"),
        (Frame(b"\x00" * 10, "rgb", 2, 2, seq=1), "invalid_input", ""),
        (Frame(b"\x00" * 12, "rgb", seq=1), "unsupported_media", "needs width and height"),
        (Frame(b"\x00", "gif", seq=1), "unsupported_media", "frame format"),
        (Audio(pcm_s16(0.1), "s16le", 4000, 1, seq=1), "unsupported_media", "sample rate 4000 Hz"),
        (Audio(pcm_s16(0.1), "s16le", 16000, 9, seq=1), "unsupported_media", "channels"),
        (Audio(pcm_s16(0.1), "u8", 16000, 1, seq=1), "unsupported_media", "audio format"),
        (Audio(b"\x00\x00\x00", "s16le", 16000, 1, seq=1), "invalid_input", "whole number"),
        (Text("hi", role="robot", seq=1), "invalid_input", "unknown role"),
        (AskMsg("", seq=1), "invalid_input", "question is empty"),
        (AskMsg("q", sampling=Sampling(top_p=0.0), seq=1), "invalid_input", "top_p"),
        (AskMsg("q", sampling=Sampling(max_new_tokens=2000), seq=1), "invalid_input", "max_new_tokens"),
        (AskMsg("q", request_id="x" * 200, seq=1), "invalid_input", "request_id"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_bad_input_is_an_error_and_the_session_goes_on(fake, message, code, fragment):
    async def body():
        proto = await _open(make_hub(fake))
        await proto.receive(message)
        (err,) = proto.pending()
        assert isinstance(err, Error) and err.code == code and fragment in err.message, err
        assert err.seq == 1 and not err.fatal and proto.state is LiveState.OPEN
        await proto.receive(AskMsg("still there?", seq=2))
        out = await collect(proto, answer_done)
        assert out[-1].finish_reason == "stop"
        await proto.connection_lost()

    run(body())


def test_out_of_order_timestamps_and_seq(fake):
    async def body():
        proto = await _open(make_hub(fake))
        await proto.receive(Frame(jpeg_bytes(), "jpeg", t_s=5.0, seq=5))
        await proto.receive(Frame(jpeg_bytes(), "jpeg", t_s=4.0, seq=6))
        await proto.receive(Text("late", seq=6))
        await proto.receive(Text("auto-numbered"))  # seq None: the server numbers it 7
        errors = proto.pending()
        assert [(e.code, e.seq) for e in errors] == [("invalid_input", 6), ("bad_seq", 6)]
        assert "before the previous one" in errors[0].message
        assert proto.session.stats().last_consumed_seq in (None, 5, 7)
        await proto.connection_lost()

    run(body())


def test_rejected_decodes_are_errors(fake):
    async def body():
        proto = await _open(make_hub(fake))
        proto.reject(ProtocolError("malformed JSON: x", "bad_message"))
        proto.reject(ProtocolError("too big", "message_too_large", 3))
        assert [(e.code, e.seq, e.fatal) for e in proto.pending()] == [
            ("bad_message", None, False),
            ("message_too_large", 3, False),
        ]
        await proto.connection_lost()

    run(body())


def test_queue_full_is_reported():
    async def body():
        engine = FakeEngine()  # not started: nothing is consumed, the session's queue fills
        hub = LiveHub(AsyncEngine(engine), ServeLimits(max_pending_tokens=256))
        proto = await _open(hub)
        for seq in range(1, 40):
            await proto.receive(Text("x" * 100, seq=seq))
        errors = [m for m in proto.pending() if isinstance(m, Error)]
        assert errors and all(e.code == "queue_full" for e in errors)
        assert errors[0].seq > 1
        await proto.connection_lost()
        engine.stop()

    run(body())


def test_frames_over_the_fps_are_skipped_before_decoding(fake):
    async def body():
        proto = await _open(make_hub(fake), fps=1.0)
        for i in range(10):  # 10 fps for 1 s; the undecodable ones in between are never decoded
            data = jpeg_bytes() if i in (0,) else b"\xff\xd8\xff garbage"
            await proto.receive(Frame(data, "jpeg", t_s=i / 10, seq=i + 1))
        await proto.receive(Frame(jpeg_bytes(), "jpeg", t_s=1.0, seq=20))
        assert proto.skipped_frames == 9 and not proto.pending()
        await proto.receive(AskMsg("q", seq=21))
        await collect(proto, answer_done)
        assert [h for h in fake.history(proto.session.id) if h.startswith("frame")] == ["frame@0", "frame@1"]
        await proto.connection_lost()

    run(body())


def test_cancel_and_newer_question():
    async def body():
        engine = FakeEngine(" ".join(["word"] * 200), step_delay_s=0.005)
        engine.start()
        proto = await _open(LiveHub(AsyncEngine(engine)))
        await proto.receive(AskMsg("first", request_id="a", seq=1))
        await collect(proto, lambda m: isinstance(m, AnswerDelta))
        await proto.receive(AskMsg("second", request_id="b", seq=2))
        out = await collect(proto, lambda m: isinstance(m, AnswerDone) and m.request_id == "a")
        assert out[-1].finish_reason == "cancelled"
        await collect(proto, lambda m: isinstance(m, AnswerDelta) and m.request_id == "b")
        await proto.receive(CancelMsg("b", seq=3))
        out = await collect(proto, answer_done)
        assert out[-1].request_id == "b" and out[-1].finish_reason == "cancelled"
        await proto.connection_lost()
        engine.stop()

    run(body())


def test_choices_and_model_errors():
    async def body():
        engine = FakeEngine("maybe", fail_on="boom")
        engine.start()
        proto = await _open(LiveHub(AsyncEngine(engine)))
        await proto.receive(AskMsg("yes or no?", choices=("yes", "no"), seq=1))
        out = await collect(proto, answer_done)
        assert "".join(m.text for m in out if isinstance(m, AnswerDelta)) == "yes"
        assert out[-1].finish_reason == "choice"
        await proto.receive(AskMsg("boom", seq=2))
        out = await collect(proto, answer_done)
        assert out[-1].finish_reason == "error" and out[-1].error_code == "model_error"
        await proto.receive(AskMsg("fine?", seq=3))
        assert (await collect(proto, answer_done))[-1].finish_reason == "stop"
        await proto.connection_lost()
        engine.stop()

    run(body())


def test_disconnect_mid_answer_cancels_it():
    async def body():
        engine = FakeEngine(" ".join(["word"] * 500), step_delay_s=0.005)
        engine.start()
        hub = LiveHub(AsyncEngine(engine))
        proto = await _open(hub)
        await proto.receive(AskMsg("long", seq=1))
        await collect(proto, lambda m: isinstance(m, AnswerDelta))
        session = proto.session.session
        stream = session.record.answer
        await proto.connection_lost()
        assert stream.finished and stream.finish_reason.value in ("cancelled", "closed")
        await asyncio.sleep(0.05)
        tokens = engine.metrics.generated_tokens
        await asyncio.sleep(0.1)
        assert engine.metrics.generated_tokens == tokens  # the engine stopped decoding
        assert engine.num_sessions == 0 and not hub.connections
        engine.stop()

    run(body())


def test_session_limit_and_draining_refuse_setup(fake):
    async def body():
        hub = make_hub(fake, max_sessions=1)
        first = await _open(hub)
        second = hub.connect()
        await second.receive(Setup(seq=0))
        (err,) = await collect(second, lambda m: False)
        assert err.code == "session_limit" and err.fatal and second.close_reason is CloseReason.TRY_AGAIN
        await second.connection_lost()
        await first.connection_lost()
        hub.draining = True
        third = hub.connect()
        await third.receive(Setup(seq=0))
        (err,) = await collect(third, lambda m: False)
        assert err.code == "unavailable" and err.fatal
        await third.connection_lost()
        assert fake.num_sessions == 0

    run(body())


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_idle_timeout(fake):
    async def body():
        clock = Clock()
        hub = LiveHub(AsyncEngine(fake), ServeLimits(idle_timeout_s=10, stats_interval_s=0), clock=clock)
        proto = await _open(hub)
        clock.t += 9
        await proto.tick()
        assert proto.state is LiveState.OPEN
        await proto.receive(Text("still here", seq=1))
        clock.t += 9
        await proto.tick()
        assert proto.state is LiveState.OPEN
        clock.t += 11
        await proto.tick()
        out = await collect(proto, lambda m: False)
        assert out[-1].code == "idle_timeout" and out[-1].fatal and proto.close_reason is CloseReason.POLICY
        assert fake.num_sessions == 0
        await proto.connection_lost()

    run(body())


def test_session_duration_limit_sends_go_away_first(fake):
    async def body():
        clock = Clock()
        limits = ServeLimits(max_session_s=100, go_away_notice_s=30, idle_timeout_s=1000, stats_interval_s=0)
        proto = await _open(LiveHub(AsyncEngine(fake), limits, clock=clock))
        clock.t += 75
        await proto.tick()
        (away,) = proto.pending()
        assert isinstance(away, GoAway) and away.seconds_left == pytest.approx(25)
        clock.t += 25
        await proto.tick()
        out = await collect(proto, lambda m: False)
        assert out[-1].code == "session_expired" and out[-1].fatal
        await proto.connection_lost()

    run(body())


def test_frames_after_the_audio_stopped_go_in_without_a_question(fake):
    """Audio, then only frames (a muted microphone): the frames do not wait for audio that never comes."""

    async def body():
        proto = await _open(make_hub(fake), fps=30)
        await proto.receive(Audio(pcm_s16(1.0), "s16le", 16_000, 1, 0.0, 1))
        for i in range(6):
            await proto.receive(Frame(jpeg_bytes(seed=i), "jpeg", t_s=1.0 + i * 0.5, seq=2 + i))
        session = proto.session
        assert session is not None
        deadline = time.monotonic() + 2.0 + 4.0  # the audio stall (2 s by default), then the engine's pass
        while session.stats().last_consumed_seq != 7 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stats = session.stats()
        assert (stats.frames, stats.last_consumed_seq, stats.queued_bytes) == (6, 7, 0)
        await proto.connection_lost()

    run(body())


def test_periodic_stats_replace_unsent_ones(fake):
    async def body():
        clock = Clock()
        proto = await _open(LiveHub(AsyncEngine(fake), ServeLimits(stats_interval_s=1.0), clock=clock))
        for _ in range(5):
            clock.t += 1.1
            await proto.tick()
        stats = proto.pending()
        assert len(stats) == 1 and isinstance(stats[0], Stats) and stats[0].t_s == pytest.approx(5.5)
        await proto.connection_lost()

    run(body())


def test_slow_reader_gets_merged_deltas_and_nothing_is_lost():
    async def body():
        words = [f"w{i}" for i in range(300)]
        engine = FakeEngine(" ".join(words), step_delay_s=0.0005)
        engine.start()
        proto = await _open(LiveHub(AsyncEngine(engine), ServeLimits(max_outbound_messages=4)))
        await proto.receive(AskMsg("talk", sampling=Sampling(max_new_tokens=400), seq=1))
        out = []
        while not out or not isinstance(out[-1], AnswerDone):
            await asyncio.sleep(0.02)  # a slow reader
            out.append(await proto.next_message())
            assert proto.outbound_queued <= 4 + 1  # deltas wait for room; one stats may be extra
        deltas = [m for m in out if isinstance(m, AnswerDelta)]
        assert "".join(d.text for d in deltas) == " ".join(words)
        assert len(deltas) < len(words)
        assert out[-1].tokens == 300
        await proto.connection_lost()
        engine.stop()

    run(body())


def test_a_client_that_never_reads_is_disconnected(fake):
    async def body():
        proto = await _open(make_hub(fake, max_outbound_messages=8))
        for seq in range(1, 40):
            await proto.receive(Frame(b"junk", "jpeg", seq=seq))
            if proto.finished:
                break
        out = await collect(proto, lambda m: False)
        assert out[-1].code == "slow_consumer" and out[-1].fatal and len(out) <= 16
        assert proto.close_reason is CloseReason.POLICY
        await proto.connection_lost()
        assert fake.num_sessions == 0

    run(body())


def test_one_bad_connection_never_affects_another(fake, monkeypatch):
    async def body():
        hub = make_hub(fake)
        good, bad = await _open(hub), await _open(hub)

        async def explode(message):
            raise RuntimeError("injected bug")

        monkeypatch.setattr(bad, "_dispatch", explode)
        await bad.receive(Text("x", seq=1))
        out = await collect(bad, lambda m: False)
        assert out[-1].code == "internal" and out[-1].fatal and bad.close_reason is CloseReason.INTERNAL
        await bad.connection_lost()
        for seq in range(1, 5):
            await good.receive(Frame(b"junk", "jpeg", seq=seq))
        await good.receive(AskMsg("fine?", seq=10))
        out = await collect(good, answer_done)
        assert out[-1].finish_reason == "stop" and good.state is LiveState.OPEN
        assert len(hub.connections) == 1
        await good.connection_lost()

    run(body())


def test_drain_lets_answers_finish_then_ends_sessions():
    async def body():
        engine = FakeEngine("a b c d e f g h", step_delay_s=0.01)
        engine.start()
        hub = LiveHub(AsyncEngine(engine))
        idle, busy = await _open(hub), await _open(hub)
        await busy.receive(AskMsg("talk", seq=1))
        drain = asyncio.create_task(hub.drain(grace_s=5.0))
        out = await collect(busy, lambda m: False)
        kinds = [type(m).__name__ for m in out]
        assert kinds.index("GoAway") < kinds.index("AnswerDone")
        done = next(m for m in out if isinstance(m, AnswerDone))
        assert done.finish_reason == "stop" and done.tokens == 8
        assert out[-1].code == "going_away" and out[-1].fatal
        rest = await collect(idle, lambda m: False)
        assert isinstance(rest[0], GoAway) and rest[-1].code == "going_away"
        await busy.receive(AskMsg("too late", seq=2))  # ignored: the connection is closing
        for proto in (idle, busy):
            assert proto.close_reason is CloseReason.GOING_AWAY
            await proto.connection_lost()
        await drain
        assert engine.num_sessions == 0
        engine.stop()

    run(body())


def test_drain_cancels_answers_after_the_grace_period():
    async def body():
        engine = FakeEngine(" ".join(["w"] * 1000), step_delay_s=0.01)
        engine.start()
        hub = LiveHub(AsyncEngine(engine))
        proto = await _open(hub)
        await proto.receive(AskMsg("talk", seq=1))
        drain = asyncio.create_task(hub.drain(grace_s=0.2))
        await asyncio.sleep(0)  # the drain sends go_away
        await proto.receive(AskMsg("new question during drain", seq=2))
        out = await collect(proto, lambda m: False)
        refused = [m for m in out if isinstance(m, Error) and m.seq == 2]
        assert refused and refused[0].code == "going_away" and not refused[0].fatal
        done = next(m for m in out if isinstance(m, AnswerDone))
        assert done.finish_reason in ("cancelled", "closed")
        await proto.connection_lost()
        await drain
        engine.stop()

    run(body())


def test_engine_stop_ends_the_connection():
    async def body():
        engine = FakeEngine("x")
        engine.start()
        proto = await _open(LiveHub(AsyncEngine(engine), ServeLimits(stats_interval_s=0.05)))
        engine.stop()
        out = await collect(proto, lambda m: False, timeout=5)
        assert isinstance(out[-1], Error) and out[-1].fatal
        await proto.connection_lost()

    run(body())


def test_rgb_audio_f32_stereo_resampled(fake):
    async def body():
        proto = await _open(make_hub(fake))
        stereo = np.zeros((44_100, 2), dtype="<f4").tobytes()
        await proto.receive(Audio(stereo, "f32le", 44_100, 2, 0.0, 1))
        await proto.receive(AskMsg("q", seq=2))
        await collect(proto, answer_done)
        assert proto.session.stats().audio_s == pytest.approx(1.0, abs=0.05)
        await proto.connection_lost()

    run(body())
