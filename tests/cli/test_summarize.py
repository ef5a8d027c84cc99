"""`streamer summarize` end to end on generated recordings (several codecs) with the bundled model."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from media._gen import write_media

from streamer.media.synth import write_synthetic_recording

CHUNK = ["--chunk-minutes", "0.25", "--note-tokens", "12", "--summary-tokens", "24", "--threads", "1"]
KEYS = {
    "source",
    "duration_s",
    "summary",
    "notes",
    "gaps",
    "summary_levels",
    "model",
    "tokens",
    "timings",
    "warnings",
}


def _summarize(bundled_dir: Path, *args: object, env: dict[str, str] | None = None, cwd: Path | None = None):
    env = {**os.environ, "STREAMER_HOME": str(bundled_dir.parent.parent), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "streamer", "summarize", *map(str, args)],
        capture_output=True, text=True, timeout=300, env=env, cwd=cwd,
    )  # fmt: skip


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Path:
    """Four minutes in four codec pairs: H.264/AAC MP4, VP9/Opus WebM, MPEG-4/MP3 AVI, FLAC audio."""
    d = tmp_path_factory.mktemp("recordings")
    write_synthetic_recording(d / "meeting.mp4", minutes=1.5, size=(320, 180), fps=5)
    write_media(
        d / "standup.webm", vcodec="libvpx-vp9", acodec="libopus", duration_s=50.0, fps=2, size=(96, 64)
    )
    write_media(d / "review.avi", vcodec="mpeg4", acodec="libmp3lame", duration_s=50.0, fps=2, size=(96, 64))
    write_media(d / "call.flac", vcodec=None, acodec="flac", duration_s=40.0, sample_rate=16000, channels=1)
    return d


@pytest.fixture(scope="module")
def summaries(bundled_dir, recordings, tmp_path_factory):
    """The whole directory summarized to JSON in one run: (process, output directory)."""
    out = tmp_path_factory.mktemp("summaries")
    proc = _summarize(bundled_dir, recordings, "--out", out, "--format", "json", *CHUNK)
    return proc, out


def test_directory_gives_one_json_per_recording(summaries, recordings):
    proc, out = summaries
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    names = sorted(p.name for p in out.iterdir())
    assert names == ["call.json", "meeting.json", "review.json", "standup.json"]  # no state left behind
    for path in out.iterdir():
        data = json.loads(path.read_text())
        assert set(data) == KEYS, path
        assert data["source"] == str(recordings / path.with_suffix("").name) + {
            "call": ".flac", "meeting": ".mp4", "review": ".avi", "standup": ".webm"}[path.stem]  # fmt: skip
        duration = data["duration_s"]
        assert duration == pytest.approx(
            {"call": 40, "meeting": 90, "review": 50, "standup": 50}[path.stem], abs=0.5
        )
        assert set(data["summary"]) == {
            "title",
            "overview",
            "key_points",
            "decisions",
            "action_items",
            "text",
        }
        notes = data["notes"]
        assert len(notes) == -(-int(duration) // 15), path
        for i, note in enumerate(notes):
            assert set(note) == {"start_s", "end_s", "text"}
            assert note["start_s"] == 15.0 * i and note["start_s"] < note["end_s"] <= duration
        assert notes[-1]["end_s"] == duration
        assert data["gaps"] == [] and data["warnings"] == []
        assert data["model"]["name"] == "streamer-tiny-random-v1"
        assert data["tokens"]["notes"] > 0 and data["tokens"]["context"] > 0
        assert data["timings"]["total_s"] > 0
    lines = proc.stderr.splitlines()
    assert any(re.search(r"meeting\.mp4: chunk 2/6 done · 00:30/01:30 media · .*x real time · .* tok/s · ETA", ln)
               for ln in lines), proc.stderr  # fmt: skip
    assert all(ln.startswith("streamer summarize: ") for ln in lines)


def test_one_input_to_stdout_as_markdown(bundled_dir, recordings):
    proc = _summarize(bundled_dir, recordings / "call.flac", "--quiet", *CHUNK)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    md = proc.stdout
    assert md.startswith(
        "# call\n\n**Source:** call.flac · **Duration:** 00:40 · **Model:** streamer-tiny-random-v1"
    )
    for heading in ("## Overview", "## Key points", "## Decisions", "## Action items", "## Notes"):
        assert f"\n{heading}\n" in md
    assert re.findall(r"^### (\S+)$", md, re.M) == ["00:00–00:15", "00:15–00:30", "00:30–00:40"]


def _strip_timings(text: str) -> dict:
    data = json.loads(text)
    data.pop("timings")
    return data


def test_kill_at_a_random_chunk_then_resume_equals_a_full_run(bundled_dir, recordings, summaries, tmp_path):
    _, out = summaries
    full = (out / "meeting.json").read_text()
    k = random.Random().randint(1, 5)  # the meeting has 6 chunks
    print(f"killed after chunk {k}")
    target = tmp_path / "meeting.json"
    args = [recordings / "meeting.mp4", "--out", target, *CHUNK]
    crashed = _summarize(bundled_dir, *args, env={"STREAMER_SUMMARIZE_CRASH_AFTER_CHUNK": str(k)})
    assert crashed.returncode == -9, crashed.stderr  # SIGKILL: no clean-up ran
    assert not target.exists() and not list(tmp_path.glob(".*.part"))
    state = json.loads((tmp_path / "meeting.json.summarize-state" / "state.json").read_text())
    assert state["chunks_done"] == k and len(state["notes"]) == k
    resumed = _summarize(bundled_dir, *args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming after chunk {k} at {k * 15 // 60:02d}:{k * 15 % 60:02d}" in resumed.stderr
    assert _strip_timings(target.read_text()) == _strip_timings(full)
    assert json.dumps(_strip_timings(target.read_text())) == json.dumps(_strip_timings(full))  # byte for byte
    assert not (tmp_path / "meeting.json.summarize-state").exists()


def test_resume_with_other_options_is_refused(bundled_dir, recordings, tmp_path):
    args = [recordings / "call.flac", "--out", tmp_path / "call.md", *CHUNK]
    crashed = _summarize(bundled_dir, *args, env={"STREAMER_SUMMARIZE_CRASH_AFTER_CHUNK": "1"})
    assert crashed.returncode == -9
    refused = _summarize(bundled_dir, *args, "--resume", "--fps", "2")
    assert refused.returncode == 1
    assert "cannot resume from" in refused.stderr and "fps 1.0 then, 2.0 now" in refused.stderr
    again = _summarize(bundled_dir, *args, "--quiet")  # without --resume: starts over
    assert again.returncode == 0 and (tmp_path / "call.md").exists()


def test_resume_skips_finished_outputs(bundled_dir, recordings, summaries):
    _, out = summaries
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    proc = _summarize(bundled_dir, recordings, "--out", out, "--format", "json", "--resume", *CHUNK)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("already summarized") == 4
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_failing_inputs_do_not_stop_the_others(bundled_dir, recordings, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.mp4").write_text("not a video\n" * 100)
    os.symlink(recordings / "call.flac", tmp_path / "in" / "call.flac")
    out = tmp_path / "out"
    proc = _summarize(bundled_dir, tmp_path / "in", tmp_path / "missing.mkv", "--out", out, *CHUNK)
    assert proc.returncode == 1
    assert (out / "call.md").exists() and not (out / "broken.md").exists()
    report = proc.stderr[proc.stderr.index("2 of 3 input(s) failed:") :].splitlines()
    assert report[1].startswith(f"  {tmp_path / 'in' / 'broken.mp4'}: ")
    assert report[2].startswith(f"  {tmp_path / 'missing.mkv'}: ") and "no such file" in report[2]


@pytest.mark.parametrize(
    "args, message, code",
    [
        (["{a}", "{b}"], "give --out DIR", 1),
        (["{a}", "--chunk-minutes", "0"], "argument --chunk-minutes: must be a number in [0.02, 1440]", 2),
        (["{a}", "--fps", "0"], "argument --fps: must be a number in (0, 30]", 2),
        (["{a}", "--prompt", "{missing}"], "cannot read the prompt file", 1),
        (["{a}", "--note-tokens", "0"], "argument --note-tokens: must be an integer in [1, 8192]", 2),
    ],
)
def test_user_errors_are_one_line(bundled_dir, recordings, tmp_path, args, message, code):
    values = {"a": recordings / "call.flac", "b": recordings / "review.avi", "missing": tmp_path / "nope.txt"}
    proc = _summarize(bundled_dir, *[a.format(**values) for a in args])
    assert proc.returncode == code
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("streamer summarize: error: ")
    assert message in proc.stderr
