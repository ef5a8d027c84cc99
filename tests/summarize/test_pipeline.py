"""The summarize pipeline in process on the bundled model: chunks, notes, resume, hierarchy, gaps."""

from __future__ import annotations

import json

import pytest
from media._gen import write_media

from streamer.engine.engine import Engine
from streamer.engine.session import Session
from streamer.summarize import StateDir, SummarizeOptions, render_markdown, summarize_recording, to_json_dict
from streamer.summarize.final import hierarchical_summary
from streamer.summarize.progress import Progress
from streamer.summarize.result import Note


def _without_timings(result) -> str:
    data = to_json_dict(result)
    data.pop("timings")
    return json.dumps(data, sort_keys=True)


def test_notes_per_chunk_and_structure(engine, talk):
    result = summarize_recording(
        engine, talk, SummarizeOptions(chunk_s=15.0, note_tokens=12, summary_tokens=24)
    )
    assert 64.0 <= result.duration_s < 64.2
    assert [n.start_s for n in result.notes] == [0.0, 15.0, 30.0, 45.0, 60.0]
    assert [n.end_s for n in result.notes][:4] == [15.0, 30.0, 45.0, 60.0]
    assert result.notes[-1].end_s == result.duration_s
    assert all(1 <= n.tokens <= 12 for n in result.notes)
    assert result.summary_levels == 0 and result.gaps == [] and result.warnings == []
    t = result.tokens
    assert t["context"] > 60 * (70 + 25) and t["notes"] == sum(n.tokens for n in result.notes)
    assert 1 <= t["summary"] <= 24 and t["budget"] < 32768  # sized to the chunk, below the engine default
    md = render_markdown(result)
    assert md.startswith("# talk\n") and "## Overview" in md and "## Key points" in md
    assert "## Decisions" in md and "## Action items" in md  # the default prompt asks for them
    assert "### 00:00–00:15" in md and "### 01:00–01:04" in md and "## Gaps" not in md
    assert set(result.timings) >= {"decode_s", "ingest_s", "notes_s", "summary_s", "total_s"}
    assert engine.num_sessions == 0


class _Interrupt(Progress):
    """Ctrl-C right after the state of chunk ``after`` is saved."""

    def __init__(self, after: int):
        super().__init__()
        self.after = after

    def chunk(self, note, chunks):  # noqa: ANN001, ANN201
        if note.index + 1 == self.after:
            raise KeyboardInterrupt


def test_resume_after_interrupt_equals_uninterrupted_run(bundled, talk, tmp_path):
    loaded, tok = bundled
    options = SummarizeOptions(chunk_s=15.0, note_tokens=10, summary_tokens=16)
    full = summarize_recording(Engine(loaded, tok), talk, options, state_dir=StateDir(tmp_path / "a"))
    assert StateDir(tmp_path / "a").load().chunks_done == 5  # the CLI removes it once the output is written
    state = StateDir(tmp_path / "b")
    interrupted = Engine(loaded, tok)
    with pytest.raises(KeyboardInterrupt):
        summarize_recording(interrupted, talk, options, state_dir=state, progress=_Interrupt(2))
    assert interrupted.num_sessions == 0  # closed on the way out
    saved = state.load()
    assert saved.chunks_done == 2 and saved.position_s == 30.0 and len(saved.notes) == 2
    assert [p.name for p in state.path.glob("session-*")] == ["session-00002.safetensors"]
    resumed = summarize_recording(Engine(loaded, tok), talk, options, state_dir=state, resume=True)
    assert _without_timings(resumed) == _without_timings(full)


def test_resume_refuses_other_options(bundled, talk, tmp_path):
    from streamer.errors import InputError

    loaded, tok = bundled
    state = StateDir(tmp_path / "s")
    with pytest.raises(KeyboardInterrupt):
        summarize_recording(Engine(loaded, tok), talk, SummarizeOptions(chunk_s=15.0, note_tokens=4),
                            state_dir=state, progress=_Interrupt(1))  # fmt: skip
    with pytest.raises(InputError, match="cannot resume.*note_tokens 4 then, 5 now"):
        summarize_recording(Engine(loaded, tok), talk, SummarizeOptions(chunk_s=15.0, note_tokens=5),
                            state_dir=state, resume=True)  # fmt: skip


def test_hierarchical_summary_when_notes_outgrow_the_budget(engine, talk):
    options = SummarizeOptions(chunk_s=16.0, note_tokens=96, summary_tokens=16, max_context_tokens=1024)
    result = summarize_recording(engine, talk, options)
    assert len(result.notes) == 4 and result.summary_levels >= 1  # the summary came from fresh sessions
    assert any("more than the" in w for w in result.warnings)  # a chunk is bigger than the context keeps
    assert result.tokens["evicted"] > 0 and engine.num_sessions == 0


def test_hierarchy_terminates_on_long_notes(engine):
    notes = [Note(i, 60.0 * i, 60.0 * (i + 1), "Alice: the budget, the plan. " * 40, 300) for i in range(30)]
    options = SummarizeOptions(summary_tokens=16, merge_tokens=64)
    final = hierarchical_summary(engine, notes, options, budget=1024, question="Summarize.",
                                 ask=_ask_greedy(engine))  # fmt: skip
    assert final.levels >= 2 and final.generated > 16 and engine.num_sessions == 0


def _ask_greedy(engine):
    from streamer.engine.sampling import SamplingParams

    def ask(session: Session, question: str, cap: int):
        stream = session.ask(question, SamplingParams(max_new_tokens=cap))
        engine.run_until_idle()
        return stream.result(0)

    return ask


@pytest.fixture(scope="module")
def holey(tmp_path_factory):
    """Video only, 2 fps, with no frames from 10 s to 30 s (40 s long)."""
    times = [i / 2 for i in range(80) if not 10 <= i / 2 < 30]
    return write_media(tmp_path_factory.mktemp("holey") / "holey.mkv", acodec=None, fps=2, size=(96, 64),
                       frame_times=times)  # fmt: skip


def test_gaps_reach_the_prompts_and_the_output(engine, holey, monkeypatch):
    asked: list[str] = []
    original = Session.ask

    def spy(self, question, params=None):  # noqa: ANN001, ANN202
        asked.append(question)
        return original(self, question, params)

    monkeypatch.setattr(Session, "ask", spy)
    result = summarize_recording(
        engine, holey, SummarizeOptions(chunk_s=15.0, note_tokens=4, summary_tokens=4)
    )
    assert [(round(g.start_s), round(g.end_s)) for g in result.gaps] == [(10, 30)]
    assert "gap 00:10–00:30: no media decoded" in result.warnings
    assert [n.start_s for n in result.notes] == [0.0, 30.0]  # the chunk inside the gap has no notes
    assert "Nothing could be decoded from 00:10 to 00:30" in asked[0]  # the notes of 0–15 s, asked at 30 s
    assert "Nothing could be decoded" not in asked[1]  # 30–40 s is whole
    assert "Nothing could be decoded from 00:10 to 00:30" in asked[-1]  # the summary
    md = render_markdown(result)
    assert "## Gaps" in md and "- 00:10–00:30: no media decoded" in md
    assert "### 00:00–00:15\n\n_Nothing decoded 00:10–00:30._\n" in md


def test_truncated_file_is_summarized_up_to_the_cut(engine, talk, tmp_path):
    cut = tmp_path / "cut.mkv"
    whole = write_media(
        tmp_path / "whole.mkv", duration_s=40.0, fps=2, size=(96, 64), acodec="libopus", gop=4
    )
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    result = summarize_recording(engine, cut, SummarizeOptions(chunk_s=10.0, note_tokens=4, summary_tokens=4))
    assert result.notes and all(n.end_s <= result.duration_s for n in result.notes)
    assert any("truncated" in w for w in result.warnings)
