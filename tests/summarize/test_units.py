"""Plain-data parts of summarize: clock, gaps, sections, prompts, inputs, state files, prefetch."""

from __future__ import annotations

import io
import json
import os
import threading
import time

import numpy as np
import pytest

from streamer.errors import InputError
from streamer.media.types import AudioFrames, VideoFrame
from streamer.outputs import atomic_write_text
from streamer.summarize.clock import format_clock, format_span
from streamer.summarize.gaps import GapTracker, describe_gap
from streamer.summarize.inputs import expand_inputs, output_format, plan_jobs
from streamer.summarize.prefetch import Prefetch
from streamer.summarize.progress import LogProgress, Progress, make_progress
from streamer.summarize.prompts import DEFAULT_SUMMARY, Prompts, asked_sections, fill, load_prompts
from streamer.summarize.result import Note
from streamer.summarize.sections import parse_sections
from streamer.summarize.state import ResumeState, check_resumable


def test_clock_formats():
    assert format_clock(0) == "00:00"
    assert format_clock(59.99) == "00:59"
    assert format_clock(61) == "01:01"
    assert format_clock(3599) == "59:59"
    assert format_clock(3600) == "1:00:00"
    assert format_clock(5 * 3600 + 62) == "5:01:02"
    assert format_clock(65, long=True) == "0:01:05"
    assert format_span(0, 90) == "00:00–01:30"


def _audio(t: float, seconds: float = 1.0) -> AudioFrames:
    n = int(seconds * 25)
    return AudioFrames(t, np.zeros((n, 640), np.float32), n * 640)


def _frame(t: float) -> VideoFrame:
    return VideoFrame(t, np.zeros((4, 4, 3), np.uint8))


def test_gaps_from_timestamp_jumps_start_and_end():
    g = GapTracker(fps=1.0, gap_s=2.0)
    assert g.observe(_audio(0.0)) is None and g.observe(_frame(0.5)) is None
    assert g.observe(_audio(1.0)) is None and g.observe(_audio(3.5)) is None  # 1.5 s hole: not a gap
    gap = g.observe(_frame(10.0))
    assert gap is not None and (gap.start_s, gap.end_s) == (4.5, 10.0)
    assert g.within(0, 5) == [gap] and g.within(11, 20) == []
    assert describe_gap(gap) == "gap 00:04–00:10: no media decoded"
    end = g.finish(30.0)
    assert end is not None and end.start_s == 11.0 and "truncated" in end.reason
    late = GapTracker(fps=1.0)
    assert late.observe(_frame(5.0)).start_s == 0.0  # decoding began late
    assert GapTracker(1.0).finish(None) is None
    assert GapTracker(1.0).finish(60.0).reason == "nothing could be decoded"


def test_sections_from_headings_in_several_styles():
    text = (
        "Title: Budget sync\nThe team met about the budget.\n## Key points\n- costs are up\n* hiring paused\n"
        "**Decisions:** ship in May\nAction items:\n1. Carol writes the plan (Friday)\n\x03"
    )
    s = parse_sections(text, "fallback", asked_sections(DEFAULT_SUMMARY))
    assert s.title == "Budget sync"
    assert s.overview == "The team met about the budget."
    assert s.key_points == ["costs are up", "hiring paused"]
    assert s.decisions == ["ship in May"]
    assert s.action_items == ["Carol writes the plan (Friday)"]
    assert s.text == text


def test_sections_without_headings_and_unasked_sections():
    s = parse_sections("Summary of the budget talk: it went well.", "talk", frozenset())
    assert s.title == "talk" and s.overview == "Summary of the budget talk: it went well."
    assert s.key_points == [] and s.decisions is None and s.action_items is None
    asked = parse_sections("Overview: fine", "t", frozenset({"decisions", "action_items"}))
    assert asked.decisions == [] and asked.action_items == []
    given = parse_sections("Decisions:\n- go", "t", frozenset())
    assert given.decisions == ["go"]  # given though not asked: kept


def test_prompt_files(tmp_path):
    assert load_prompts(None) == Prompts()
    (tmp_path / "p.txt").write_text("Summarize for the CEO.\n")
    assert load_prompts(tmp_path / "p.txt").summary == "Summarize for the CEO."
    (tmp_path / "p.toml").write_text('notes = "Notes {start}-{end}"\nsystem = "Be brief."\n')
    p = load_prompts(tmp_path / "p.toml")
    assert p.notes == "Notes {start}-{end}" and p.system == "Be brief." and p.summary == DEFAULT_SUMMARY
    (tmp_path / "bad.toml").write_text('note = "x"\n')
    with pytest.raises(InputError, match="unknown prompt name"):
        load_prompts(tmp_path / "bad.toml")
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(InputError, match="empty"):
        load_prompts(tmp_path / "empty.txt")
    with pytest.raises(InputError, match="cannot read"):
        load_prompts(tmp_path / "missing.txt")
    assert fill("{start}-{end}{gaps} {other}", start="00:00", end="00:15") == "00:00-00:15 {other}"
    assert asked_sections("List the decisions.") == {"decisions"}
    assert asked_sections("Key points only.") == frozenset()
    assert Prompts().digest() != Prompts(summary="x").digest()


def test_inputs_and_output_plan(tmp_path, monkeypatch):
    d = tmp_path / "meetings"
    d.mkdir()
    for name in ("b.mp4", "a.mkv", ".hidden.mp4", "notes.txt"):
        (d / name).write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    files, failed = expand_inputs([str(d), str(d / "a.mkv"), str(tmp_path / "empty"), "missing.mp4"])
    assert [f.name for f in files] == ["a.mkv", "b.mp4", "missing.mp4"]
    assert failed == [(str(tmp_path / "empty"), "no media files in this directory")]
    monkeypatch.chdir(tmp_path)
    (job,) = plan_jobs([d / "a.mkv"], None, "md")
    assert job.output is None and job.state_dir == tmp_path / "a.mkv.summarize-state"
    with pytest.raises(InputError, match="--out DIR"):
        plan_jobs(files, None, "md")
    jobs = plan_jobs(files, str(tmp_path / "out"), "json")
    assert [j.output.name for j in jobs] == ["a.json", "b.json", "missing.json"]
    assert jobs[0].state_dir.name == "a.json.summarize-state"
    (one,) = plan_jobs([d / "a.mkv"], str(tmp_path / "x.md"), "md")
    assert one.output == tmp_path / "x.md"
    (into,) = plan_jobs([d / "a.mkv"], str(tmp_path) + "/", "md")
    assert into.output == tmp_path / "a.md"
    with pytest.raises(InputError, match="both write"):
        plan_jobs([d / "a.mkv", tmp_path / "a.mp4"], str(tmp_path / "o"), "md")
    assert output_format(None, "x.JSON") == "json" and output_format(None, None) == "md"
    assert output_format("md", "x.json") == "md"


def test_state_round_trip_and_mismatch_message(tmp_path):
    state = ResumeState({"path": "/a", "size": 1, "mtime_ns": 2}, {"chunk_s": 15.0, "fps": 1.0}, "m1",
                        position_s=30.0, chunks_done=2, notes=[Note(0, 0.0, 15.0, "hi ✓", 3)])  # fmt: skip
    back = ResumeState.from_json(state.to_json())
    assert back == state
    other = ResumeState({"path": "/a", "size": 1, "mtime_ns": 2}, {"chunk_s": 30.0, "fps": 1.0}, "m1")
    with pytest.raises(InputError, match=r"chunk_s 15.0 then, 30.0 now.*without --resume"):
        check_resumable(state, other, tmp_path)
    check_resumable(state, ResumeState(state.input, state.options, "m1"), tmp_path)
    with pytest.raises(ValueError):
        ResumeState.from_json(json.dumps({"format": "other"}))


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "sub" / "out.md"
    atomic_write_text(target, "one")
    assert target.read_text() == "one"

    with pytest.raises(TypeError):
        atomic_write_text(target, 42)  # type: ignore[arg-type]
    assert target.read_text() == "one" and os.listdir(target.parent) == ["out.md"]


def test_prefetch_keeps_order_raises_and_stops():
    with Prefetch(range(1000), depth=4) as items:
        assert list(items) == list(range(1000))

    def broken():
        yield 1
        raise ValueError("bad packet")

    with Prefetch(broken()) as items, pytest.raises(ValueError, match="bad packet"):
        list(items)
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    before = threading.active_count()
    with Prefetch(endless(), depth=2) as items:
        assert next(iter(items)) == 0
    time.sleep(0.05)
    assert threading.active_count() == before and len(produced) < 10


def test_progress_lines_and_quiet():
    out = io.StringIO()
    p = LogProgress(out)
    p.begin("talk.mp4", 120.0)
    p.advance(30.0, 3000)
    p.chunk(Note(1, 15.0, 30.0, "x", 1), 8)
    p.end()
    lines = out.getvalue().splitlines()
    assert lines[0] == "streamer summarize: talk.mp4: 02:00, starting"
    assert lines[1].startswith("streamer summarize: talk.mp4: chunk 2/8 done · 00:30/02:00 media · ")
    assert "x real time" in lines[1] and "tok/s" in lines[1] and "ETA" in lines[1]
    quiet = io.StringIO()
    q = make_progress(quiet=True, stream=quiet)
    assert type(q) is Progress
    q.begin("a", None)
    q.info("hello")
    assert quiet.getvalue() == ""
    assert isinstance(make_progress(stream=io.StringIO()), LogProgress)  # not a terminal


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal():
    from streamer.summarize.progress import BarProgress

    out = _Terminal()
    p = make_progress(stream=out)
    assert isinstance(p, BarProgress)
    p.begin("talk.mp4", 120.0)
    p.advance(60.0, 6000)
    p.info("a log line")
    p.chunk(Note(3, 45.0, 60.0, "x", 1), 8)
    p.end()
    text = out.getvalue()
    assert "talk.mp4" in text and "%|" in text and "01:00/02:00 media" in text and "tok/s" in text
    assert "streamer summarize: a log line" in text


def test_render_long_recordings_and_model_text_safely():
    from streamer.summarize.render import render, to_json_dict
    from streamer.summarize.result import Gap, SummaryResult, SummarySections

    result = SummaryResult(
        source="/x/all-hands.mp4", duration_s=3700.0,
        summary=SummarySections("All hands", "# shouting\nfine", ["a"], None, ["Bob: ---"], "raw"),
        notes=[Note(0, 0.0, 3600.0, "first\x07 hour", 5), Note(1, 3600.0, 3700.0, "", 0)],
        gaps=[Gap(3650.0, 3700.0, "not decoded (damaged or truncated file?)")],
        model={"name": "m"}, tokens={"context": 1}, timings={"total_s": 1.23456},
        warnings=["video: damaged packets skipped (InvalidDataError)",
                  "gap 1:00:50–1:01:40: not decoded (damaged or truncated file?)"],
    )  # fmt: skip
    md = render(result, "md")
    assert md.startswith("# All hands\n") and "**Duration:** 1:01:40" in md
    assert "\\# shouting\nfine" in md and "## Decisions" not in md and "- Bob: ---" in md
    assert "### 0:00:00–1:00:00\n\nfirst hour\n" in md
    assert "### 1:00:00–1:01:40\n\n_Nothing decoded 1:00:50–1:01:40._\n\n_No notes._" in md
    assert "- 1:00:50–1:01:40: not decoded" in md
    assert (
        "## Warnings\n\n- video: damaged packets skipped (InvalidDataError)\n\n## Notes" in md
    )  # gap not twice
    data = json.loads(render(result, "json"))
    assert data == to_json_dict(result) and data["timings"] == {"total_s": 1.235}
    assert data["notes"][1] == {"start_s": 3600.0, "end_s": 3700.0, "text": ""}
    assert data["summary"]["decisions"] is None and data["summary"]["action_items"] == ["Bob: ---"]
