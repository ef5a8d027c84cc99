"""Fault containment on the bundled model: every waiting answer ends, the engine keeps serving."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

import streamer.engine.core as core
from streamer.engine import Engine, EngineConfig, ErrorCode, FinishReason, SamplingParams, SessionConfig
from streamer.engine.eviction import UnitKind


def _media(session, rng, seconds, start=0.0):
    for sec in range(seconds):
        session.push_frame(rng.integers(0, 256, (48, 80, 3), dtype=np.uint8), start + sec)
        session.push_audio((rng.standard_normal(16_000) * 0.1).astype(np.float32), start + sec)


class _FailOnce:
    """A forward hook that raises the first time ``when(hidden)`` holds (as a CUDA OOM would)."""

    def __init__(self, when):
        self.when, self.fired = when, 0

    def __call__(self, module, inputs, output):
        if not self.fired and self.when(inputs[0]):
            self.fired += 1
            raise RuntimeError("injected fault")


@pytest.fixture
def engine(bundled):
    loaded, tok = bundled
    engine = Engine(loaded, tok)
    engine.start()
    yield engine
    engine.stop()


def _last_layer(engine):
    return engine.model.model.language_model.layers[-1].mlp  # called after every cache was written


def test_fault_in_batched_decode_ends_those_answers_and_the_engine_serves_on(engine):
    rng = np.random.default_rng(0)
    sessions = [engine.open_session(SessionConfig(max_context_tokens=2048)) for _ in range(3)]
    for s in sessions:
        _media(s, rng, 2)
    for s in sessions:
        assert s.wait_idle(30)
    hook = _FailOnce(lambda h: h.shape[0] == 3 and h.shape[1] == 1)  # the batched decode step
    handle = _last_layer(engine).register_forward_hook(hook)
    try:
        params = SamplingParams(max_new_tokens=40)
        streams = [s.ask("describe", params) for s in sessions]
        t0 = time.monotonic()
        results = [st.result(timeout=5) for st in streams]
    finally:
        handle.remove()
    assert hook.fired == 1
    assert time.monotonic() - t0 < 5
    failed = [r for r in results if r.finish_reason is FinishReason.ERROR]
    assert failed and all(r.code is ErrorCode.MODEL_ERROR and "injected fault" in r.error for r in failed)
    # The sessions and the engine still work.
    assert engine.health().ok
    for s in sessions:
        r = s.ask("again", SamplingParams(max_new_tokens=3)).result(timeout=10)
        assert r.finish_reason in (FinishReason.LENGTH, FinishReason.STOP)


def test_failed_prefill_rolls_back_and_the_session_continues_as_if_it_never_came(engine):
    """A fault after the full-attention layer: caches and bookkeeping roll back to before the chunk."""
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (48, 80, 3), dtype=np.uint8) for _ in range(3)]
    a = engine.open_session(SessionConfig(system_prompt="Watch.", max_context_tokens=2048))
    a.push_frame(frames[0], 0.0)
    assert a.wait_idle(30)
    hook = _FailOnce(lambda h: h.shape[1] > 1)  # the next prefill
    handle = _last_layer(engine).register_forward_hook(hook)
    try:
        a.push_frame(frames[1], 1.0)
        event = a.next_event(timeout=10)
    finally:
        handle.remove()
    assert event is not None and event.code is ErrorCode.MODEL_ERROR and "frame not added" in event.message
    a.push_frame(frames[2], 2.0)
    answer_a = a.ask("what?", SamplingParams(max_new_tokens=8)).result(timeout=20)
    units = engine.context_units(a)
    assert sum(u.kind is UnitKind.VISION for u in units) == 2
    assert a.stats().context_tokens == sum(u.tokens for u in units)

    b = engine.open_session(SessionConfig(system_prompt="Watch.", max_context_tokens=2048))
    b.push_frame(frames[0], 0.0)
    b.push_frame(frames[2], 2.0)
    answer_b = b.ask("what?", SamplingParams(max_new_tokens=8)).result(timeout=20)
    assert answer_a.token_ids == answer_b.token_ids
    assert a.stats().context_tokens == b.stats().context_tokens


def test_failed_prefill_of_a_question_ends_its_answer_and_the_next_one_works(engine):
    s = engine.open_session(SessionConfig(max_context_tokens=2048))
    assert s.wait_idle(30)
    hook = _FailOnce(lambda h: h.shape[1] > 1)
    handle = _last_layer(engine).register_forward_hook(hook)
    try:
        r = s.ask("first?", SamplingParams(max_new_tokens=4)).result(timeout=10)
    finally:
        handle.remove()
    assert r.finish_reason is FinishReason.ERROR and r.code is ErrorCode.MODEL_ERROR
    r = s.ask("second?", SamplingParams(max_new_tokens=4)).result(timeout=10)
    assert r.finish_reason in (FinishReason.LENGTH, FinishReason.STOP) and r.token_ids


def test_sampling_fault_ends_that_answer_only(engine, monkeypatch):
    original, calls = core.sample, []

    def flaky(logits, params, *args):
        calls.append(1)
        if len(calls) == 2:
            raise FloatingPointError("injected sampling fault")
        return original(logits, params, *args)

    monkeypatch.setattr(core, "sample", flaky)
    s = engine.open_session(SessionConfig(max_context_tokens=2048))
    r = s.ask("hi", SamplingParams(max_new_tokens=10)).result(timeout=10)
    assert r.finish_reason is FinishReason.ERROR and "injected sampling fault" in r.error
    r = s.ask("hi again", SamplingParams(max_new_tokens=3)).result(timeout=10)
    assert r.finish_reason in (FinishReason.LENGTH, FinishReason.STOP)


def test_a_bug_escaping_a_step_fails_what_was_in_flight_then_repeated_bugs_mark_unhealthy(
    bundled, monkeypatch
):
    loaded, tok = bundled
    engine = Engine(loaded, tok, EngineConfig(max_consecutive_step_errors=3))
    engine.start()
    try:
        s = engine.open_session(SessionConfig(max_context_tokens=2048))
        assert s.wait_idle(30)
        original = core.ModelCore._decode
        failures = {"left": 1}

        def buggy(self, slots):
            if failures["left"]:
                failures["left"] -= 1
                raise KeyError("bookkeeping bug")
            return original(self, slots)

        monkeypatch.setattr(core.ModelCore, "_decode", buggy)
        r = s.ask("one", SamplingParams(max_new_tokens=20)).result(timeout=5)
        assert r.finish_reason is FinishReason.ERROR and "bookkeeping bug" in r.error
        assert engine.health().ok and engine.health().step_errors == 1
        r = s.ask("two", SamplingParams(max_new_tokens=3)).result(timeout=10)
        assert r.finish_reason in (FinishReason.LENGTH, FinishReason.STOP)
        # A core that fails every step is fatal: unhealthy, and every waiting stream ends at once.
        monkeypatch.setattr(core.ModelCore, "step", lambda self, records: 1 / 0)
        waiting = s.ask("three", SamplingParams(max_new_tokens=3))
        t0 = time.monotonic()
        r = waiting.result(timeout=5)
        assert time.monotonic() - t0 < 2
        assert r.finish_reason is FinishReason.ERROR
        health = engine.health()
        assert health.status == "unhealthy" and "ZeroDivisionError" in health.reason
        with pytest.raises(Exception, match="unhealthy"):
            engine.open_session()
    finally:
        engine.stop()


def test_overload_keeps_every_accepted_frame_and_sample_exactly_once(bundled):
    """Pushes far faster than prefill: dropped frames are counted, nothing is duplicated or lost."""
    loaded, tok = bundled
    engine = Engine(loaded, tok)
    engine.start()
    try:
        config = SessionConfig(max_context_tokens=32_768, max_pending_tokens=1024, max_held_frames=2)
        s = engine.open_session(config)
        rng = np.random.default_rng(2)
        image = rng.integers(0, 256, (96, 160, 3), dtype=np.uint8)
        pushed_frames, refused_audio, accepted_audio_s = 0, 0, 0.0
        runs = [0]  # samples of each unbroken run of accepted audio (a refused piece leaves a gap)
        for step in range(240):  # 60 s of media at 4 fps, audio in 250 ms pieces, as fast as possible
            t = step * 0.25
            s.push_frame(image, t)
            pushed_frames += 1
            result = s.push_audio(np.full(4000, 0.01, np.float32), t)
            if result.accepted:
                accepted_audio_s += 0.25
                runs[-1] += 4000
            else:
                refused_audio += 1
                runs.append(0)
                assert result.code is ErrorCode.QUEUE_FULL
        assert s.wait_idle(120)
        assert s.ask("done?", SamplingParams(max_new_tokens=1)).result(timeout=30).error is None
        assert s.wait_idle(30)
        stats = s.stats()
        units = engine.context_units(s)
    finally:
        engine.stop()
    assert stats.dropped_frames > 0  # the bound really bit (audio may be refused too: never lost)
    vision = [u for u in units if u.kind is UnitKind.VISION]
    audio_tokens = sum(u.tokens - 2 for u in units if u.kind is UnitKind.AUDIO)
    assert len(vision) == stats.frames == pushed_frames - stats.dropped_frames
    # every accepted sample once: each run ends in one padded 40 ms frame (a gap closes the run)
    frames = sum(math.ceil(samples / 640) for samples in runs)
    assert audio_tokens == frames
    assert stats.audio_s == pytest.approx(frames * 0.04)
    assert 0 <= stats.audio_s - accepted_audio_s < 0.04 * sum(1 for samples in runs if samples)


_KEEP: list = []


def test_a_consumer_whose_event_loop_closed_does_not_hurt_the_engine(engine):
    """The reader's loop dies mid-answer: the answer is cancelled, other sessions are served."""
    import asyncio

    s = engine.open_session(SessionConfig(max_context_tokens=2048))
    other = engine.open_session(SessionConfig(max_context_tokens=2048))
    stream = s.ask("talk", SamplingParams(max_new_tokens=200))
    loop = asyncio.new_event_loop()

    async def read_one():
        agen = stream.__aiter__()
        await agen.__anext__()
        return asyncio.ensure_future(agen.__anext__())  # left waiting when the loop closes

    _KEEP.append(
        loop.run_until_complete(read_one())
    )  # never collected: its loop is gone, as in a dead thread
    loop.close()
    t0 = time.monotonic()
    while not stream.finished and time.monotonic() - t0 < 5:
        time.sleep(0.01)
    assert stream.finished and stream.cancelled
    r = other.ask("still there?", SamplingParams(max_new_tokens=3)).result(timeout=10)
    assert r.finish_reason in (FinishReason.LENGTH, FinishReason.STOP)
    assert engine.health().ok


def test_process_exit_without_stop_is_clean(bundled_dir, tmp_path):
    """An engine left running mid-answer at interpreter exit: stopped by atexit, no abort message."""
    import subprocess
    import sys

    code = (
        "from streamer.engine import Engine, SamplingParams\n"
        "from streamer.model import load_model, load_tokenizer\n"
        f"d = {str(bundled_dir)!r}\n"
        "e = Engine(load_model(d), load_tokenizer(d)); e.stop_ids = frozenset(); e.start()\n"
        "stream = e.open_session().ask('go', SamplingParams(max_new_tokens=100000))\n"
        "next(iter(stream))\n"
        "print('exiting', flush=True)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "exiting" in proc.stdout
    assert "terminate called" not in proc.stderr and "Traceback" not in proc.stderr


def test_stats_count_each_frame_and_audio_second_once_across_chunk_boundaries(bundled):
    """Small chunks split an item's turn-opening text from its media: still counted once."""
    from streamer.engine.scheduler import SchedulerConfig

    loaded, tok = bundled
    engine = Engine(loaded, tok, EngineConfig(scheduler=SchedulerConfig(prefill_chunk_tokens=64)))
    s = engine.open_session(SessionConfig(max_context_tokens=4096))
    rng = np.random.default_rng(0)
    for sec in range(15):
        s.push_frame(rng.integers(0, 256, (48, 80, 3), dtype=np.uint8), float(sec))
        s.push_audio(np.full(16_000, 0.01, np.float32), float(sec))
        if sec % 4 == 3:  # questions close the user turn: the next media opens a new one
            s.ask("q?", SamplingParams(max_new_tokens=2))
            engine.run_until_idle()
    s.ask("end", SamplingParams(max_new_tokens=1))
    engine.run_until_idle()
    assert s.stats().audio_s == pytest.approx(15.0) and s.stats().frames == 15
