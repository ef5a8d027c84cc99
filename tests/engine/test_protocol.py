"""Protocol types, timeline, inbox and collectors: plain data, no model, no torch."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from streamer.engine.collector import AnswerStream
from streamer.engine.inbox import Inbox
from streamer.engine.protocol import (
    ErrorCode,
    FinishReason,
    PushStatus,
    SamplingParams,
    SessionConfig,
    check_text,
    new_request_id,
    new_session_id,
)
from streamer.engine.timeline import AudioItem, FrameItem, QuestionItem, TextItem, Timeline
from streamer.errors import InputError, SessionError


def test_api_types_import_without_torch():
    code = (
        "import sys\n"
        "import streamer.engine.protocol, streamer.engine.session, streamer.engine.aio, streamer.engine.fake\n"
        "from streamer.engine import SessionConfig, SamplingParams, FakeEngine, AsyncEngine\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_ids_are_unique_strings():
    ids = {new_session_id() for _ in range(1000)} | {new_request_id() for _ in range(1000)}
    assert len(ids) == 2000
    assert all(i.startswith(("sess_", "req_")) for i in ids)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"temperature": 1e-45}, "temperature"),
        ({"temperature": 3.5e38}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_p": 1e-300}, "top_p"),
        ({"top_p": 0}, "top_p"),
        ({"seed": 2**64}, "seed"),
        ({"seed": -1}, "seed"),
        ({"top_k": 2.5}, "top_k"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"max_new_tokens": True}, "max_new_tokens"),
        ({"choices": "yes"}, "choices"),
        ({"choices": ("yes", " ")}, "choice"),
        ({"choices": ("yes", b"no")}, "choice"),
    ],
)
def test_sampling_params_are_validated_where_they_enter(kwargs, match):
    with pytest.raises(InputError, match=match):
        SamplingParams(**kwargs)


def test_valid_sampling_params_pass():
    p = SamplingParams(temperature=0.7, top_p=0.9, top_k=40, seed=2**63 - 1, choices=["a", "b"])
    assert p.choices == ("a", "b")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_context_tokens": 0}, "max_context_tokens"),
        ({"max_context_tokens": "4096"}, "max_context_tokens"),
        ({"evict_to_fraction": 2.0}, "evict_to_fraction"),
        ({"frame_soft_tokens": 71}, "frame_soft_tokens"),
        ({"audio_segment_s": 31}, "audio_segment_s"),
        ({"system_prompt": b"hi"}, "system_prompt"),
        ({"system_prompt": "caf\udce9"}, "Unicode"),
        ({"max_pending_bytes": 10}, "max_pending_bytes"),
    ],
)
def test_session_config_is_validated_in_one_place(kwargs, match):
    with pytest.raises(InputError, match=match):
        SessionConfig(**kwargs)


@pytest.mark.parametrize("value", [None, b"abc", 3, "bad \udce9 surrogate"])
def test_check_text_refuses_non_unicode(value):
    with pytest.raises(InputError):
        check_text(value, "question")


# ---- timeline ---------------------------------------------------------------------------------


def _frame(v: int = 0) -> np.ndarray:
    return np.full((8, 8, 3), v, np.uint8)


def test_timeline_holds_frames_until_the_audio_before_them_arrives():
    tl = Timeline(audio_segment_s=1.0, max_held_frames=4)
    assert [type(i) for i in tl.push_audio(np.zeros(8000, np.float32), 0.0)] == []
    assert tl.push_frame(_frame(), 0.5) == []  # waits for the audio up to 0.5 s
    out = tl.push_audio(np.zeros(16000, np.float32), 0.5)  # completes [0, 1) and half of [1, 2)
    assert [type(i) for i in out] == [AudioItem]  # the frame at 0.5 s is after the segment start 0.0
    out = tl.push_audio(np.zeros(8000, np.float32))
    assert [type(i).__name__ for i in out] == ["FrameItem", "AudioItem"]
    assert out[0].t_s == 0.5 and out[1].t_s == 1.0
    assert tl.flush() == []


def test_timeline_frames_stop_waiting_when_the_audio_stops():
    now = [0.0]
    tl = Timeline(audio_segment_s=1.0, max_held_frames=4, clock=lambda: now[0], audio_stall_s=2.0)
    tl.push_audio(np.zeros(16000, np.float32), 0.0)
    assert tl.push_frame(_frame(), 1.5) == [] and tl.push_frame(_frame(), 2.0) == []  # waiting for audio
    now[0] = 1.9
    assert tl.release_stalled() == []  # audio may still come
    now[0] = 2.1  # no audio for more than 2 s: it stopped
    assert [f.t_s for f in tl.release_stalled()] == [1.5, 2.0] and tl.held == []
    assert [f.t_s for f in tl.push_frame(_frame(), 2.5)] == [2.5]  # not held while the audio is stopped
    tl.push_audio(np.zeros(8000, np.float32))  # the audio resumes: frames wait for it again
    assert tl.push_frame(_frame(), 3.0) == [] and tl.release_stalled() == []


def test_timeline_without_a_stall_bound_waits_for_the_audio():
    now = [0.0]
    tl = Timeline(audio_segment_s=1.0, clock=lambda: now[0])  # offline layouts: all input is known
    tl.push_audio(np.zeros(16000, np.float32), 0.0)
    assert tl.push_frame(_frame(), 1.5) == []
    now[0] = 1e6
    assert tl.release_stalled() == [] and len(tl.held) == 1


def test_timeline_gap_closes_the_segment_and_flush_keeps_exact_times():
    tl = Timeline(audio_segment_s=1.0)
    tl.push_audio(np.zeros(4000, np.float32), 0.0)
    out = tl.push_audio(np.zeros(4000, np.float32), 10.0)  # a gap: the running segment closes
    assert len(out) == 1 and out[0].t_s == 0.0 and out[0].frames.shape == (7, 640)  # padded tail
    out = tl.flush()
    assert len(out) == 1 and out[0].t_s == 10.0
    out = tl.push_audio(np.zeros(16000, np.float32))  # continues right after the real samples
    assert out[0].t_s == pytest.approx(10.25)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda tl: tl.push_frame(_frame(), 1e300), "timestamp"),
        (lambda tl: tl.push_frame(_frame(), float("nan")), "timestamp"),
        (lambda tl: tl.push_frame(np.zeros((8, 8), np.uint8), 1.0), "uint8"),
        (lambda tl: tl.push_audio(np.array([np.nan], np.float32), 1.0), "NaN"),
        (lambda tl: tl.push_audio(np.zeros((2, 2), np.float32), 1.0), "1-D"),
        (lambda tl: tl.push_audio(np.array(["a"]), 1.0), "1-D"),
    ],
)
def test_timeline_refuses_bad_input_without_changing_state(call, match):
    tl = Timeline()
    tl.push_frame(_frame(), 2.0)
    before = (tl.last_frame_t, len(tl.held), tl.audio_next_t)
    with pytest.raises(InputError, match=match):
        call(tl)
    assert (tl.last_frame_t, len(tl.held), tl.audio_next_t) == before
    with pytest.raises(InputError, match="out-of-order"):
        tl.push_frame(_frame(), 1.0)


def test_timeline_clone_is_independent():
    tl = Timeline()
    tl.push_audio(np.ones(1000, np.float32), 0.0)
    twin = tl.clone()
    twin.push_audio(np.ones(16000, np.float32))
    assert tl.held_bytes == 4000 and tl.audio_next_t == pytest.approx(1000 / 16000)


# ---- inbox --------------------------------------------------------------------------------------


def _tokens(item):
    if isinstance(item, FrameItem):
        return 80
    if isinstance(item, AudioItem):
        return int(item.frames.shape[0]) + 2
    return 10


def test_inbox_drops_oldest_frames_first_and_never_audio():
    inbox = Inbox(max_tokens=300, max_bytes=1 << 30, estimate=_tokens)
    frames = [FrameItem(float(i), _frame(i)) for i in range(3)]
    for f in frames:
        assert inbox.offer([f], pushed=f).status is PushStatus.ACCEPTED  # 240 tokens
    audio = AudioItem(3.0, np.zeros((25, 640), np.float32))  # 27 tokens: fits (267)
    assert inbox.offer([audio]).accepted
    f4 = FrameItem(4.0, _frame(4))
    result = inbox.offer([f4], pushed=f4)  # 347 > 300: the oldest frame goes
    assert result.status is PushStatus.ACCEPTED and result.dropped_frames == 1
    assert inbox.dropped_frames == 1 and inbox.queued_tokens == 267
    taken = inbox.take(10_000)
    assert [getattr(i, "t_s", None) for i in taken] == [1.0, 2.0, 3.0, 4.0]


def test_inbox_refuses_audio_that_cannot_fit_and_changes_nothing():
    inbox = Inbox(max_tokens=100, max_bytes=1 << 30, estimate=_tokens)
    a = AudioItem(0.0, np.zeros((90, 640), np.float32))
    assert inbox.offer([a]).accepted
    before = (inbox.queued_tokens, inbox.queued_bytes, len(inbox))
    result = inbox.offer([AudioItem(4.0, np.zeros((25, 640), np.float32)), TextItem("hi")])
    assert result.status is PushStatus.REFUSED and result.code is ErrorCode.QUEUE_FULL
    assert "full" in result.reason
    assert (inbox.queued_tokens, inbox.queued_bytes, len(inbox)) == before


def test_inbox_says_when_a_push_is_larger_than_the_whole_queue():
    # An empty queue that can never take the push: "arriving faster than the engine" would send
    # the client into retrying forever; the reason says to split it instead.
    inbox = Inbox(max_tokens=5, max_bytes=1 << 30, estimate=_tokens)
    result = inbox.offer([TextItem("a long document")])  # 10 tokens > 5, with nothing waiting
    assert result.status is PushStatus.REFUSED and result.code is ErrorCode.QUEUE_FULL
    assert "larger than the session's whole input queue" in result.reason and "faster" not in result.reason
    assert "smaller pieces" in result.reason and len(inbox) == 0


def test_inbox_bounds_bytes_too_and_a_frame_that_cannot_fit_is_dropped():
    inbox = Inbox(max_tokens=10_000, max_bytes=1000, estimate=_tokens)
    big = FrameItem(0.0, np.zeros((20, 20, 3), np.uint8))  # 1200 bytes
    result = inbox.offer([big], pushed=big)
    assert result.status is PushStatus.DROPPED and inbox.dropped_frames == 1 and len(inbox) == 0


def test_inbox_take_stops_at_a_question_and_tracks_seq():
    inbox = Inbox(10_000, 1 << 30, _tokens)
    a, q, b = TextItem("a", seq=5), QuestionItem("why?", SamplingParams(), seq=7), TextItem("b", seq=8)
    inbox.offer([a, q, b])
    taken = inbox.take(10_000)
    assert len(taken) == 2 and taken[0] is a and taken[1] is q
    assert inbox.last_consumed_seq == 7 and inbox.pending == 3  # 2 in flight + 1 queued
    inbox.done(2)
    assert inbox.pending == 1 and inbox.take(10_000)[0] is b


# ---- collectors ----------------------------------------------------------------------------------


def test_slow_reader_gets_merged_deltas_not_a_growing_queue():
    stream = AnswerStream("s")
    for i in range(1000):
        stream.put("x", [i])
    stream.finish(FinishReason.STOP)
    events = list(stream)
    assert len(events) == 1  # one merged delta carrying the end
    assert events[0].text == "x" * 1000 and events[0].finish_reason is FinishReason.STOP


def test_reader_wait_ends_when_the_engine_is_gone():
    dead = {"why": None}
    stream = AnswerStream("s", alive=lambda: dead["why"])
    threading.Timer(0.1, lambda: dead.update(why="the engine is stopped")).start()
    t0 = time.monotonic()
    events = list(stream)
    assert time.monotonic() - t0 < 1.5
    assert events[-1].finish_reason is FinishReason.ERROR and events[-1].code is ErrorCode.UNAVAILABLE


def test_result_times_out_with_a_clear_error():
    with pytest.raises(SessionError, match="timed out"):
        AnswerStream("s").result(timeout=0.05)


def test_leaving_a_sync_iteration_early_cancels():
    cancelled = []
    stream = AnswerStream("s", on_cancel=lambda: cancelled.append(1))
    stream.put("a", [1])
    for _ in stream:
        break
    assert stream.cancelled and cancelled and stream.finish_reason is FinishReason.CANCELLED


def test_async_reader_and_early_exit_cancels():
    async def main():
        stream = AnswerStream("s")

        def produce():
            for i in range(5):
                stream.put(f"{i}", [i])
                time.sleep(0.01)
            stream.finish(FinishReason.STOP)

        threading.Thread(target=produce).start()
        text = "".join([e.text async for e in stream])
        assert text == "01234"
        other = AnswerStream("s")
        other.put("a", [1])
        async for _ in other:
            break
        await asyncio.sleep(0)
        return other

    other = asyncio.run(main())
    assert other.cancelled


_KEEP: list = []


def test_put_to_a_reader_whose_loop_closed_never_raises():
    stream = AnswerStream("s")

    async def start_reading():
        agen = stream.__aiter__()
        task = asyncio.ensure_future(agen.__anext__())
        await asyncio.sleep(0.01)
        return task

    loop = asyncio.new_event_loop()
    _KEEP.append(loop.run_until_complete(start_reading()))  # a task left pending: its loop "died"
    loop.close()
    stream.put("late", [1])  # must not raise in the engine thread
    assert stream.cancelled and stream.finished


def test_model_never_imports_engine():
    code = (
        "import sys\n"
        "import streamer.model, streamer.model.bundled, streamer.model.fingerprint, streamer.model.inputs\n"
        "bad = [m for m in sys.modules if m.startswith('streamer.engine')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
