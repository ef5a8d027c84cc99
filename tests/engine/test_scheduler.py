"""The scheduler is plain data: tested with views alone, no model."""

from streamer.engine.scheduler import Scheduler, SchedulerConfig, SessionView


def view(sid, units=(), question=False, decoding=False):
    return SessionView(sid, tuple(units), question, decoding)


def test_decodes_are_batched_and_one_prefill_chunk_interleaves():
    sched = Scheduler(SchedulerConfig(max_decode_batch=8, prefill_chunk_tokens=100, idle_prefill_chunks=4))
    out = sched.schedule(
        [view(0, decoding=True), view(1, decoding=True), view(2, [80, 80, 80]), view(3, [10])]
    )
    assert out.decode == [0, 1]
    assert len(out.prefill) == 1  # someone decodes: a single chunk, so answers are not stalled


def test_chunks_never_split_units_and_big_units_go_alone():
    sched = Scheduler(SchedulerConfig(prefill_chunk_tokens=100))
    assert sched.schedule([view(0, [30, 30, 30, 30])]).prefill == [(0, 90)]
    assert sched.schedule([view(0, [300, 10])]).prefill == [(0, 300)]


def test_questions_jump_the_ingest_queue():
    sched = Scheduler(SchedulerConfig(idle_prefill_chunks=1))
    out = sched.schedule([view(0, [50] * 10), view(1, [50], question=True)])
    assert out.prefill == [(1, 50)]


def test_decoding_sessions_do_not_prefill_their_new_media():
    out = Scheduler().schedule([view(0, [70], decoding=True)])
    assert out.decode == [0] and out.prefill == []


def test_decode_batches_rotate_when_over_the_cap():
    sched = Scheduler(SchedulerConfig(max_decode_batch=2))
    views = [view(i, decoding=True) for i in range(5)]
    seen = set()
    for _ in range(3):
        out = sched.schedule(views)
        assert len(out.decode) == 2
        seen.update(out.decode)
    assert seen == {0, 1, 2, 3, 4}


def test_idle_ingest_rotates_between_sessions():
    sched = Scheduler(SchedulerConfig(idle_prefill_chunks=1))
    views = [view(0, [10] * 5), view(1, [10] * 5)]
    firsts = {sched.schedule(views).prefill[0][0] for _ in range(2)}
    assert firsts == {0, 1}


def test_prefill_while_decoding_is_capped_by_a_token_budget():
    sched = Scheduler(SchedulerConfig(prefill_chunk_tokens=512, decode_prefill_tokens=100))
    out = sched.schedule([view(0, decoding=True), view(1, [40, 40, 40, 40])])
    assert out.prefill == [(1, 80)]  # whole units within 100 tokens
    out = sched.schedule([view(0, decoding=True), view(1, [300])])
    assert out.prefill == [(1, 300)]  # a bigger unit still goes, alone
    assert sched.schedule([view(1, [40] * 10)]).prefill == [(1, 400)]  # nobody decodes: full chunks
