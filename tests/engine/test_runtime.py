"""The engine loop on the fake core: commands, events, lifecycle, health, async use (no torch)."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from streamer.engine import (
    Ask,
    AsyncEngine,
    Cancel,
    CloseSession,
    EngineConfig,
    ErrorCode,
    FakeEngine,
    FinishReason,
    OpenSession,
    PushAudio,
    PushFrame,
    PushText,
    SamplingParams,
    SessionConfig,
)
from streamer.errors import InputError, SessionError


@pytest.fixture
def fake():
    engine = FakeEngine(answer="a small red ball")
    engine.start()
    yield engine
    engine.stop()


def test_submit_runs_every_protocol_command(fake):
    session = fake.submit(OpenSession(SessionConfig(system_prompt="hi")))
    sid = session.id
    assert fake.submit(PushFrame(sid, np.zeros((8, 8, 3), np.uint8), 0.0, seq=1)).accepted
    assert fake.submit(PushAudio(sid, np.zeros(16000, np.float32), 0.0, seq=2)).accepted
    assert fake.submit(PushText(sid, "note", seq=3)).accepted
    answer = fake.submit(Ask(sid, "what?", SamplingParams(), seq=4)).result(timeout=5)
    assert answer.text == "a small red ball" and answer.finish_reason is FinishReason.STOP
    assert fake.history(sid) == ["frame@0", "audio@0", "user:note", "question:what?"]
    assert session.stats().last_consumed_seq == 4
    fake.submit(Cancel(sid))
    fake.submit(CloseSession(sid))
    with pytest.raises(SessionError, match="no open session"):
        fake.submit(PushText(sid, "late"))


def test_a_newer_question_cancels_the_running_answer():
    engine = FakeEngine(answer=" ".join(["word"] * 200), step_delay_s=0.002)
    engine.start()
    try:
        s = engine.open_session()
        first = s.ask("long?")
        second = s.ask("short?", SamplingParams(max_new_tokens=2))
        assert first.result(timeout=5).finish_reason is FinishReason.CANCELLED
        assert second.result(timeout=5).finish_reason is FinishReason.LENGTH
    finally:
        engine.stop()


def test_close_and_stop_end_every_waiting_answer_at_once():
    engine = FakeEngine(answer=" ".join(["word"] * 1000), step_delay_s=0.005)
    engine.start()
    a, b = engine.open_session(), engine.open_session()
    ra, rb = a.ask("go"), b.ask("go")
    time.sleep(0.05)
    a.close()
    assert ra.result(timeout=1).finish_reason is FinishReason.CLOSED
    engine.stop()
    assert rb.result(timeout=1).finish_reason is FinishReason.CLOSED
    assert engine.health().status == "stopped"
    with pytest.raises(SessionError, match="stopped"):
        engine.open_session()


def test_stop_with_grace_lets_a_short_answer_finish():
    engine = FakeEngine(answer="one two three", step_delay_s=0.01)
    engine.start()
    r = engine.open_session().ask("go")
    time.sleep(0.02)
    engine.stop(grace_s=2.0)
    assert r.result(timeout=1).finish_reason is FinishReason.STOP


def test_idle_sessions_time_out_and_free_their_slot():
    engine = FakeEngine(config=EngineConfig(max_sessions=1))
    engine.start()
    try:
        s = engine.open_session(SessionConfig(idle_timeout_s=0.2))
        with pytest.raises(SessionError, match="maximum"):
            engine.open_session()
        event = s.next_event(timeout=3)
        assert event is not None and event.code is ErrorCode.IDLE_TIMEOUT
        assert s.closed
        engine.open_session()  # the slot is free again
    finally:
        engine.stop()


def test_bad_input_is_refused_at_the_boundary(fake):
    s = fake.open_session()
    for bad in (None, b"bytes", "lone \udce9"):
        with pytest.raises(InputError):
            s.push_text(bad)
        with pytest.raises(InputError):
            s.ask(bad)
    with pytest.raises(InputError, match="role"):
        s.push_text("x", role="robot")
    with pytest.raises(InputError, match="timestamp"):
        s.push_frame(np.zeros((4, 4, 3), np.uint8), 1e300)
    with pytest.raises(InputError, match="SessionConfig"):
        fake.open_session({"system_prompt": "x"})
    with pytest.raises(InputError, match="already in use"):
        fake.open_session(session_id=s.id)
    assert s.ask("still fine?").result(timeout=5).text == "a small red ball"
    s.close()
    stats = s.stats()  # readable after close, no KeyError
    assert stats.closed


def test_a_full_queue_refuses_a_question_through_its_stream():
    engine = FakeEngine()  # not started: nothing drains the queue
    s = engine.open_session(SessionConfig(max_pending_tokens=256))
    while s.push_audio(np.zeros(16000, np.float32)).accepted:
        pass
    r = s.ask("hello?").result(timeout=1)
    assert r.finish_reason is FinishReason.ERROR and r.code is ErrorCode.QUEUE_FULL
    engine.stop()


def test_async_adapter_never_blocks_and_early_exit_cancels():
    async def main():
        engine = AsyncEngine(FakeEngine(answer=" ".join(["w"] * 500), step_delay_s=0.002))
        async with engine:
            s = await engine.open_session(SessionConfig())
            assert (await s.push_frame(np.zeros((8, 8, 3), np.uint8), 0.0)).accepted
            stream = s.ask("go")
            got = 0
            async for event in stream:
                got += len(event.token_ids)
                if got >= 3:
                    break
            await asyncio.sleep(0.05)
            assert stream.cancelled and stream.finish_reason is FinishReason.CANCELLED
            answer = await s.ask("again", SamplingParams(max_new_tokens=4)).aresult(timeout=5)
            assert answer.finish_reason is FinishReason.LENGTH and len(answer.token_ids) == 4
            assert await s.wait_idle(5)
            assert engine.health().ok

    asyncio.run(main(), debug=True)


def test_a_reader_on_a_dead_engine_thread_is_not_left_waiting(fake):
    s = fake.open_session()
    fake._running = False  # noqa: SLF001 - simulate the step thread dying
    fake.wake()
    time.sleep(0.2)
    stream = s.ask("anyone?")
    t0 = time.monotonic()
    r = stream.result(timeout=5)
    assert time.monotonic() - t0 < 2
    assert r.finish_reason is FinishReason.ERROR and r.code is ErrorCode.UNAVAILABLE
    assert fake.health().status == "unhealthy"
