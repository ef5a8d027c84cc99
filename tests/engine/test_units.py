"""Unit tests of sampling, the sequence builder and the session context (tiny bundled model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamer.engine.context import SessionContext
from streamer.engine.eviction import EvictionPolicy, Unit, UnitKind
from streamer.engine.sampling import ChoiceConstraint, SamplingParams, sample
from streamer.engine.sequence import SequenceBuilder
from streamer.engine.timeline import QuestionItem, TextItem
from streamer.model.inputs import Layout

# ---- sampling -----------------------------------------------------------------------------------


def test_greedy_banned_and_allowed():
    logits = torch.tensor([0.0, 5.0, 1.0, 4.0])
    assert sample(logits, SamplingParams()) == 1
    assert sample(logits, SamplingParams(), banned=[1]) == 3
    assert sample(logits, SamplingParams(), allowed=[0, 2]) == 2


def test_top_k_top_p_and_seed():
    logits = torch.tensor([0.0, 5.0, 1.0, 4.9])
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        assert sample(logits, SamplingParams(temperature=1.0, top_k=1), g) == 1
        g = torch.Generator().manual_seed(seed)
        assert sample(logits, SamplingParams(temperature=1.0, top_p=1e-6), g) == 1
    draws = [
        sample(logits, SamplingParams(temperature=2.0, seed=3), torch.Generator().manual_seed(3))
        for _ in range(5)
    ]
    assert len(set(draws)) == 1
    spread = {
        sample(logits, SamplingParams(temperature=5.0), torch.Generator().manual_seed(s)) for s in range(50)
    }
    assert len(spread) > 1


def test_choice_trie_walks_to_a_complete_choice():
    c = ChoiceConstraint([[5, 6], [5, 7, 8], [9]], end_id=1)
    assert sorted(c.allowed()) == [5, 9]
    assert not c.advance(5)
    assert sorted(c.allowed()) == [6, 7]
    assert c.advance(6)  # [5, 6] is complete and nothing else continues it


# ---- sequence -----------------------------------------------------------------------------------


@pytest.fixture
def builder(bundled):
    loaded, tok = bundled
    return SequenceBuilder(loaded.config, tok, max_text_unit_tokens=16), tok


def test_frame_units_carry_their_stamp_and_block(builder):
    b, tok = builder
    units = b.frame(np.zeros((48, 96, 3), np.uint8), 65.0)
    assert [u.unit.kind for u in units] == [UnitKind.TEXT, UnitKind.VISION]  # turn open, then the frame
    lay = b.lay_out(units, first_block=3)
    assert "01:05" in tok.decode(lay.ids, skip_special_tokens=False)
    assert set(lay.block_ids) == {-1, 3}


def test_question_answer_and_turn_closing(builder):
    b, tok = builder
    q = b.units_of(QuestionItem("why?", SamplingParams()))
    assert q[-1].question  # its logits start the answer
    assert b.state() == (False, True)  # an answer follows: it must be closed before anything else
    nxt = b.units_of(TextItem("note"))
    text = tok.decode(b.lay_out(nxt, 0).ids, skip_special_tokens=False)
    assert text.startswith(tok.chat_format.model_suffix)
    assert b.state() == (False, False)


def test_long_text_is_cut_into_bounded_units_and_state_round_trips(builder):
    b, _ = builder
    units = b.turn("user", "word " * 200)
    assert len(units) > 1 and all(u.unit.tokens <= 16 for u in units)
    saved = b.state()
    b.units_of(QuestionItem("q", SamplingParams()))
    b.set_state(saved)
    assert b.state() == saved


# ---- context -------------------------------------------------------------------------------------


def _lay(n: int, rng) -> Layout:
    return Layout(ids=[int(t) for t in rng.integers(10, 400, n)], kinds=[0] * n, block_ids=[-1] * n)


def test_checkpoint_rollback_restores_every_cache_exactly(bundled):
    loaded, _ = bundled
    window = loaded.config.text.effective_sliding_window
    ctx = SessionContext(
        loaded.model, EvictionPolicy(capacity=1024, target=800, protect_recent=window + 16),
        torch.float32, torch.device("cpu"),
    )  # fmt: skip
    rng = np.random.default_rng(0)
    ctx.prefill(_lay(window + 20, rng), [Unit(UnitKind.TEXT, window + 20, pinned=True)])  # the ring wrapped

    def state():  # what attention can see: the full cache's used slots, the whole ring
        out = []
        for c in ctx.ensure_caches():
            if c is not None:
                n = getattr(c, "length", c.capacity)
                out.append([t[..., :n, :].clone() if t.dim() == 4 else t[:, :n].clone()
                            for t in (c.keys, c.values, c.seq_index, c.positions)])  # fmt: skip
        return out

    before = state()
    point = ctx.checkpoint(30)
    ctx.prefill(_lay(30, rng), [Unit(UnitKind.TEXT, 30)])
    assert ctx.ensure_caches()[0] is not None
    ctx.rollback(point)
    after = state()
    for old, new in zip(before, after, strict=True):
        for a, b in zip(old, new, strict=True):
            assert torch.equal(a, b)


def test_make_room_evicts_media_before_text_and_keeps_the_sink(bundled):
    loaded, _ = bundled
    window = loaded.config.text.effective_sliding_window
    ctx = SessionContext(
        loaded.model, EvictionPolicy(capacity=400, target=300, protect_recent=window + 16),
        torch.float32, torch.device("cpu"),
    )  # fmt: skip
    rng = np.random.default_rng(1)
    ctx.prefill(_lay(10, rng), [Unit(UnitKind.TEXT, 10, pinned=True, label="system")])
    for i in range(60):
        kind = UnitKind.VISION if i % 3 else UnitKind.TEXT
        ctx.prefill(_lay(12, rng), [Unit(kind, 12, label=f"{kind.name}{i}")])
    assert ctx.evictions >= 1 and ctx.context_tokens <= 400
    assert ctx.units[0].label == "system"
    kept = [u.kind for u in ctx.units[1:6]]
    assert UnitKind.TEXT in kept  # old text outlived old frames
