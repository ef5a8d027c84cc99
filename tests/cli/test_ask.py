"""`streamer ask` end to end on the bundled model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from streamer.media.synth import write_synthetic_recording


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return write_synthetic_recording(
        tmp_path_factory.mktemp("rec") / "talk.mp4", minutes=0.25, size=(320, 180), fps=5
    )


def _ask(bundled_dir, *args):
    env = {**os.environ, "STREAMER_HOME": str(bundled_dir.parent.parent)}
    return subprocess.run(
        [sys.executable, "-m", "streamer", "ask", *map(str, args), "--threads", "1"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


def test_json_answer_has_the_documented_fields(bundled_dir, recording):
    proc = _ask(bundled_dir, recording, "What is on the slide?", "--json", "--max-new-tokens", "8")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) >= {"answer", "token_ids", "ttft_s", "context_tokens", "evicted_tokens"}
    assert 1 <= len(out["token_ids"]) <= 8
    assert out["context_tokens"] > 15 * 70  # 15 s of 1 fps frames (70 tokens each) at least
    assert out["evicted_tokens"] == 0 and out["ttft_s"] > 0


def test_small_budget_evicts_and_still_answers(bundled_dir, recording):
    proc = _ask(
        bundled_dir, recording, "Summary?", "--json", "--max-context-tokens", "1024", "--max-new-tokens", "4"
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["evicted_tokens"] > 0 and out["context_tokens"] <= 1024


def test_choices_answer_is_one_of_them(bundled_dir, recording):
    proc = _ask(bundled_dir, recording, "left, right or stop?", "--choices", "left,right,stop")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() in {"left", "right", "stop"}


@pytest.mark.parametrize(
    "args, message, code",
    [
        (["{missing}", "q"], "no such file", 1),
        (["{text}", "q"], "not a media file", 1),
        (["{rec}", "q", "--fps", "0"], "argument --fps", 2),
        (["{rec}", ""], "argument question: is empty", 2),
        (["{rec}", "  "], "argument question: is empty", 2),
        (["{rec}", "q", "--choices", ",,"], "choices", 1),
        (["{rec}", "q", "--choices", ""], "choices", 1),
        (["{rec}", "q", "--choices", " "], "choices", 1),
        (["{rec}", "q", "--max-context-tokens", "5"], "too small", 1),
    ],
)
def test_user_errors_are_one_line(bundled_dir, recording, tmp_path, args, message, code):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    subs = {"{missing}": tmp_path / "nope.mp4", "{text}": text, "{rec}": recording}
    proc = _ask(bundled_dir, *[subs.get(a, a) for a in args])
    assert proc.returncode == code
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("streamer ask: error:") and message in lines[0], (
        proc.stderr
    )
