"""Sessions end to end on the bundled model, with transformers as the oracle where it applies."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch

from streamer.engine.context import SessionContext
from streamer.engine.engine import Engine, EngineConfig
from streamer.engine.sampling import SamplingParams
from streamer.engine.scheduler import SchedulerConfig
from streamer.engine.session import FinishReason, SessionConfig
from streamer.errors import InputError, SessionError
from streamer.model.inputs import Layout
from streamer.verify import _reference_inputs


def _stream(session, rng, seconds, start=0.0, size=(90, 160)):
    for sec in range(seconds):
        t = start + sec
        session.push_frame(rng.integers(0, 256, (*size, 3), dtype=np.uint8), t)
        session.push_audio((rng.standard_normal(16_000) * 0.1).astype(np.float32), t)


@pytest.fixture
def recorded(monkeypatch):
    """Record every prefilled layout and the logits of its last token."""
    calls: list[tuple[Layout, torch.Tensor]] = []
    original = SessionContext.prefill

    def spy(self, lay, units):
        logits = original(self, lay, units)
        calls.append((lay, logits.clone()))
        return logits

    monkeypatch.setattr(SessionContext, "prefill", spy)
    return calls


def _concat(lays: list[Layout]) -> Layout:
    out = Layout()
    for lay in lays:
        base = len(out.ids)
        out.media += [(base + start, seg) for start, seg in lay.media]
        out.ids += lay.ids
        out.kinds += lay.kinds
        out.block_ids += lay.block_ids
    return out


def test_many_small_pushes_match_reference_forward(bundled, recorded):
    """No eviction: chunk-by-chunk session logits and the greedy answer equal the reference's."""
    from transformers import Gemma4UnifiedForConditionalGeneration

    loaded, tok = bundled
    engine = Engine(loaded, tok, EngineConfig(scheduler=SchedulerConfig(prefill_chunk_tokens=64)))
    session = engine.open_session(SessionConfig(system_prompt="Watch.", max_context_tokens=4096))
    rng = np.random.default_rng(0)
    for sec in range(4):  # interleaved frames and audio, pushed in small pieces
        session.push_frame(rng.integers(0, 256, (60, 100, 3), dtype=np.uint8), float(sec))
        for piece in range(4):
            session.push_audio((rng.standard_normal(4000) * 0.1).astype(np.float32), sec + piece / 4)
        engine.step()
    session.push_text("Note: the speaker is Alice.", role="user")
    answer = session.ask("Who speaks?", SamplingParams(max_new_tokens=6))
    engine.run_until_idle()
    result = answer.result(5)
    lays = [lay for lay, _ in recorded]
    whole = _concat(lays)
    assert len(whole) > 2 * loaded.config.text.sliding_window  # longer than the window
    assert {1, 2, 3} <= set(whole.kinds) or {2, 3} <= set(whole.kinds)  # video frames and audio
    ref = Gemma4UnifiedForConditionalGeneration.from_pretrained(str(loaded.path), dtype=torch.float32).eval()
    inputs = _reference_inputs(loaded.config, [whole])
    with torch.inference_mode():
        logits = ref(**inputs).logits[0]
    ends = np.cumsum([len(lay) for lay in lays]) - 1
    for (_, ours), end in zip(recorded, ends, strict=True):
        assert (ours - logits[end]).abs().max() < 1e-4
    # The answer: greedy generate over the same sequence.
    with torch.inference_mode():
        out = ref.generate(
            **inputs,
            max_new_tokens=6,
            do_sample=False,
            eos_token_id=sorted(engine.stop_ids),
            pad_token_id=0,
            suppress_tokens=engine.banned_ids,  # placeholders are never generated
        )
    want = out[0, len(whole) :].tolist()
    want = [t for t in want if t not in engine.stop_ids]
    assert result.token_ids == want[: len(result.token_ids)] and len(result.token_ids) == len(want)


@pytest.mark.parametrize("variant", ["default", "odd-pattern-rope"])
def test_rerotated_keys_equal_fresh_keys_at_new_positions(checkpoint_factory, variant):
    """After evictions, layer 0's cached keys (context-free) equal keys computed afresh at the re-indexed positions."""
    from streamer.engine.eviction import EvictionPolicy, Unit, UnitKind
    from streamer.model.weights import load_model

    loaded = load_model(checkpoint_factory(variant, "100KB" if variant == "odd-pattern-rope" else None))
    model = loaded.model
    window = loaded.config.text.effective_sliding_window
    ctx = SessionContext(
        model,
        EvictionPolicy(capacity=120, target=80, protect_recent=window + 4),
        torch.float32,
        torch.device("cpu"),
    )
    rng = np.random.default_rng(5)
    embeds: dict[int, torch.Tensor] = {}
    kinds = [UnitKind.TEXT, UnitKind.AUDIO, UnitKind.VISION]
    for step in range(40):
        n = int(rng.integers(3, 12))
        lay = Layout(ids=[int(t) for t in rng.integers(10, 400, n)], kinds=[0] * n, block_ids=[-1] * n)
        start = ctx.next_seq
        pinned = step == 0
        ctx.prefill(lay, [Unit(kinds[step % 3] if not pinned else UnitKind.TEXT, n, pinned=pinned)])
        for i, t in enumerate(lay.ids):
            embeds[start + i] = model.embed_tokens(torch.tensor([t]))[0]
    assert ctx.evictions >= 3 and ctx.context_tokens <= 120
    layer = model.model.language_model.layers[0]
    cache = ctx.caches[0]
    n = getattr(cache, "length", None) or cache.filled
    seq = cache.seq_index[0, :n] if hasattr(cache, "length") else cache.seq_index[0]
    pos = cache.positions[0, : len(seq)]
    filled = seq >= 0
    seq, pos = seq[filled], pos[filled]
    x = torch.stack([embeds[int(s)] for s in seq])[None]
    rope = model.model.language_model.rope[layer.spec.layer_type]
    cos, sin = rope(pos[None], torch.float32)
    with torch.inference_mode():
        fresh_k, fresh_v = layer.self_attn.project_kv(layer.input_layernorm(x), cos, sin)
    cached_k = cache.keys[:, :, : len(filled)][:, :, filled]
    cached_v = cache.values[:, :, : len(filled)][:, :, filled]
    assert (cached_k - fresh_k).abs().max() < 1e-5
    assert (cached_v - fresh_v).abs().max() < 1e-6
    # Positions are contiguous from 0 in the full cache: inside the trained range forever.
    if hasattr(cache, "length"):
        assert torch.equal(cache.positions[0, :n], torch.arange(n))


def test_memory_flat_over_a_stream_20x_the_budget_and_answers_after(bundled):
    loaded, tok = bundled
    engine = Engine(loaded, tok)
    budget = 1024
    session = engine.open_session(SessionConfig(system_prompt="Keep watching.", max_context_tokens=budget))
    rng = np.random.default_rng(1)
    allocated = set()
    answers = []
    for minute in range(4):
        _stream(session, rng, 60, start=60.0 * minute, size=(48, 96))
        engine.run_until_idle()
        answers.append(session.ask(f"What happened in minute {minute}?", SamplingParams(max_new_tokens=4)))
        engine.run_until_idle()
        stats = engine.context_stats(session)
        allocated.add(stats.kv_bytes_allocated)
        assert stats.context_tokens <= budget
    stats = engine.context_stats(session)
    assert stats.evicted_tokens + stats.context_tokens >= 20 * budget
    assert len(allocated) == 1  # flat
    for a in answers:
        r = a.result(5)
        assert r.finish_reason in (FinishReason.LENGTH, FinishReason.STOP) and r.error is None
    # Sinks/system prompt and the Q&A text outlive the frames: every question is still in the cache.
    units = engine.context_units(session)
    assert units[0].pinned and units[0].label == "system"
    assert sum(u.label == "question" for u in units) == 4
    assert all(u.label != "frame 00:00" for u in units)


def _alone(loaded, tok, seed, question):
    engine = Engine(loaded, tok)
    s = engine.open_session(SessionConfig(system_prompt=f"session {seed}", max_context_tokens=2048))
    _stream(s, np.random.default_rng(seed), 3)
    a = s.ask(question, SamplingParams(max_new_tokens=12))
    engine.run_until_idle()
    return a.result(5).token_ids


def test_batched_decode_across_sessions_equals_each_alone(bundled, monkeypatch):
    import streamer.engine.core as core

    loaded, tok = bundled
    questions = ["what color?", "how many people are there in the room?", "left or right"]
    alone = [_alone(loaded, tok, seed, q) for seed, q in enumerate(questions)]
    engine = Engine(loaded, tok)
    sessions = [
        engine.open_session(SessionConfig(system_prompt=f"session {i}", max_context_tokens=2048))
        for i in range(3)
    ]
    for seed, s in enumerate(sessions):
        _stream(s, np.random.default_rng(seed), 3)
    engine.run_until_idle()
    streams = [s.ask(q, SamplingParams(max_new_tokens=12)) for s, q in zip(sessions, questions, strict=True)]
    batch_sizes = []
    original = core.decode_batch

    def spy(model, contexts, tokens):
        batch_sizes.append(len(contexts))
        return original(model, contexts, tokens)

    monkeypatch.setattr(core, "decode_batch", spy)
    engine.run_until_idle()
    assert max(batch_sizes) == 3  # really batched
    assert [st.result(5).token_ids for st in streams] == alone


def test_choices_force_one_of_the_list(bundled):
    loaded, tok = bundled
    engine = Engine(loaded, tok)
    s = engine.open_session()
    _stream(s, np.random.default_rng(3), 2)
    for _ in range(3):
        a = s.ask("left, right or stop?", SamplingParams(choices=("left", "right", "stop", "turn around")))
        engine.run_until_idle()
        r = a.result(5)
        assert r.text in ("left", "right", "stop", "turn around")
        assert r.finish_reason == FinishReason.CHOICE


def test_sampling_is_seeded_and_respects_max_tokens(bundled):
    loaded, tok = bundled
    engine = Engine(loaded, tok)
    outs = []
    for _ in range(2):
        s = engine.open_session()
        a = s.ask("tell me", SamplingParams(max_new_tokens=9, temperature=0.8, top_k=50, top_p=0.9, seed=7))
        engine.run_until_idle()
        outs.append(a.result(5))
        s.close()
    assert outs[0].token_ids == outs[1].token_ids and len(outs[0].token_ids) <= 9


def test_bad_inputs_are_clear_errors(bundled):
    loaded, tok = bundled
    engine = Engine(loaded, tok)
    s = engine.open_session()
    s.push_frame(np.zeros((48, 48, 3), np.uint8), 5.0)
    with pytest.raises(InputError, match="out-of-order frame"):
        s.push_frame(np.zeros((48, 48, 3), np.uint8), 4.0)
    with pytest.raises(InputError, match="uint8"):
        s.push_frame(np.zeros((48, 48), np.uint8), 6.0)
    with pytest.raises(InputError, match="uint8"):
        s.push_frame(np.zeros((48, 48, 3), np.float32), 6.0)
    with pytest.raises(InputError, match="non-empty"):
        s.push_audio(np.zeros(0, np.float32), 6.0)
    with pytest.raises(InputError, match="NaN"):
        s.push_audio(np.full(100, np.nan, np.float32), 6.0)
    with pytest.raises(InputError, match="empty"):
        s.ask("   ")
    with pytest.raises(InputError, match="max_new_tokens"):
        SamplingParams(max_new_tokens=0)
    with pytest.raises(InputError, match="too small"):
        engine.open_session(SessionConfig(max_context_tokens=10))
    s.close()
    with pytest.raises(SessionError, match="closed"):
        s.push_frame(np.zeros((48, 48, 3), np.uint8), 9.0)


def test_question_while_big_ingest_pending_waits_for_it(bundled):
    loaded, tok = bundled
    engine = Engine(loaded, tok)
    s = engine.open_session(SessionConfig(max_context_tokens=8192))
    _stream(s, np.random.default_rng(4), 20)  # nothing prefilled yet
    a = s.ask("summary?", SamplingParams(max_new_tokens=3))
    engine.run_until_idle()
    r = a.result(5)
    assert r.context_tokens > 20 * 70  # the whole ingest was in the context before the answer
    assert len(r.token_ids) >= 1


def test_cancel_and_close_mid_answer(bundled):
    loaded, tok = bundled
    engine = Engine(loaded, tok)
    s = engine.open_session()
    a = s.ask("long answer please", SamplingParams(max_new_tokens=200))
    for _ in range(3):
        engine.step()
    s.cancel()
    engine.run_until_idle()
    assert a.result(1).finish_reason == FinishReason.CANCELLED
    b = s.ask("again", SamplingParams(max_new_tokens=200))
    c_session = engine.open_session()
    c = c_session.ask("other session", SamplingParams(max_new_tokens=5))
    for _ in range(3):
        engine.step()
    s.close()
    engine.run_until_idle()
    assert b.result(1).finish_reason == FinishReason.CLOSED
    assert c.result(1).finish_reason in (
        FinishReason.LENGTH,
        FinishReason.STOP,
    )  # the other session is unharmed
    # A new question cancels the running one.
    d = c_session.ask("first", SamplingParams(max_new_tokens=100))
    engine.step()
    e = c_session.ask("second", SamplingParams(max_new_tokens=3))
    engine.run_until_idle()
    assert d.result(1).finish_reason == FinishReason.CANCELLED
    assert e.result(1).finish_reason in (FinishReason.LENGTH, FinishReason.STOP)


def test_thousands_of_sessions_opened_and_closed_leak_nothing(bundled):
    loaded, tok = bundled
    engine = Engine(loaded, tok, EngineConfig(max_sessions=8))
    for i in range(2000):
        s = engine.open_session(SessionConfig(max_context_tokens=1024))
        if i % 100 == 0:
            s.push_text("hello")
            engine.run_until_idle()
        s.close()
    assert engine.num_sessions == 0
    gc.collect()
    live = [o for o in gc.get_objects() if type(o) is SessionContext]
    assert len(live) <= 1
    with pytest.raises(SessionError, match="maximum"):
        for _ in range(9):
            engine.open_session(SessionConfig(max_context_tokens=1024))


def test_snapshot_restore_continues_bit_for_bit(bundled, tmp_path):
    from streamer.engine.snapshot import restore_session, save_session

    loaded, tok = bundled

    def run(split: bool) -> list[list[int]]:
        engine = Engine(loaded, tok)
        s = engine.open_session(SessionConfig(system_prompt="notes", max_context_tokens=1024))
        rng = np.random.default_rng(9)
        answers = []
        for chunk in range(3):
            _stream(s, rng, 8, start=8.0 * chunk, size=(48, 96))
            a = s.ask(f"notes for chunk {chunk}", SamplingParams(max_new_tokens=5))
            engine.run_until_idle()
            answers.append(a.result(5).token_ids)
            if split and chunk == 1:
                save_session(engine, s, tmp_path / "s.safetensors")
                engine = Engine(loaded, tok)  # a fresh process, as after a crash
                s = restore_session(engine, tmp_path / "s.safetensors")
        return answers

    assert run(split=True) == run(split=False)


def test_long_text_is_prefilled_in_bounded_chunks(bundled, recorded):
    """A huge pasted text never becomes one giant prefill (its mask would be S x S)."""
    loaded, tok = bundled
    engine = Engine(loaded, tok, EngineConfig(scheduler=SchedulerConfig(prefill_chunk_tokens=512)))
    s = engine.open_session(SessionConfig(max_context_tokens=8192))
    s.push_text("word " * 3000)
    a = s.ask("and " * 1500 + "so?", SamplingParams(max_new_tokens=2))
    engine.run_until_idle()
    assert a.result(5).finish_reason in (FinishReason.LENGTH, FinishReason.STOP)
    assert max(len(lay) for lay, _ in recorded) <= 512
