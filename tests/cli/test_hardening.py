"""What a demanding user meets at the command line (issue 13): odd outputs, odd names, a changed
model on --resume, repeated Ctrl-C, files with nothing decodable, strict JSON."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from media._gen import write_media

from streamer.media.synth import write_synthetic_recording

CHUNK = ["--chunk-minutes", "0.25", "--note-tokens", "4", "--summary-tokens", "4", "--threads", "1"]
CRASH = "STREAMER_SUMMARIZE_CRASH_AFTER_CHUNK"


def _run(bundled_dir: Path, *args: object, env: dict[str, str] | None = None, cwd: Path | None = None):
    env = {**os.environ, "STREAMER_HOME": str(bundled_dir.parent.parent), **(env or {})}
    argv = [a if isinstance(a, bytes) else str(a) for a in args]
    return subprocess.run([sys.executable, "-m", "streamer", *argv], capture_output=True, text=True,
                          timeout=300, env=env, cwd=cwd)  # fmt: skip


def _one_line(proc, code: int, *needles: str) -> None:
    assert proc.returncode == code, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in lines[0], proc.stderr


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return write_synthetic_recording(
        tmp_path_factory.mktemp("rec") / "talk.mp4", minutes=0.75, size=(64, 48), fps=2
    )


@pytest.fixture(scope="module")
def undecodable(tmp_path_factory) -> Path:
    """An MKV whose header is fine and whose every packet is zeros: it opens, nothing decodes."""
    d = tmp_path_factory.mktemp("bad")
    data = bytearray(
        write_media(d / "src.mkv", duration_s=3.0, fps=4, acodec=None, size=(64, 48)).read_bytes()
    )
    data[600:] = bytes(len(data) - 600)
    (d / "zeros.mkv").write_bytes(bytes(data))
    return d / "zeros.mkv"


# ---- outputs ---------------------------------------------------------------------------------
def test_out_to_a_device_or_fifo_is_refused_before_any_model_work(bundled_dir, recording, tmp_path):
    _one_line(_run(bundled_dir, recording, "--out", "/dev/null", cwd=tmp_path).__class__ and
              _run(bundled_dir, "summarize", recording, "--out", "/dev/null", cwd=tmp_path), 1,
              "/dev/null is a character device, not a regular file")  # fmt: skip
    assert Path("/dev/null").is_char_device()
    os.mkfifo(tmp_path / "pipe.md")
    start = time.monotonic()
    _one_line(_run(bundled_dir, "summarize", recording, "--out", tmp_path / "pipe.md"), 1, "is a FIFO")
    assert time.monotonic() - start < 30
    assert (tmp_path / "pipe.md").is_fifo() and sorted(os.listdir(tmp_path)) == ["pipe.md"]


@pytest.mark.parametrize("out", ["/proc/streamer/x.md", "{file}/x.md"])
def test_impossible_out_is_one_line_before_the_model_loads(bundled_dir, recording, tmp_path, out):
    (tmp_path / "file").write_text("")
    proc = _run(bundled_dir, "summarize", recording, "--out", out.format(file=tmp_path / "file"), *CHUNK)
    _one_line(proc, 1, "streamer summarize: error: ")
    assert not list(tmp_path.glob("*.summarize-state"))


def test_probe_dump_into_a_file_is_refused(bundled_dir, recording, tmp_path):
    (tmp_path / "file").write_text("")
    _one_line(
        _run(bundled_dir, "probe", recording, "--dump", tmp_path / "file"), 1, "is a file, not a directory"
    )


# ---- names that are not UTF-8 ------------------------------------------------------------------
def test_non_utf8_file_name_summarizes_resumes_and_displays(bundled_dir, recording, tmp_path):
    name = os.fsdecode(b"caf\xe9.mp4")
    os.link(recording, tmp_path / name)
    out = tmp_path / "out"
    args = [os.fsencode(tmp_path / name), "--out", f"{out}/", "--format", "json", *CHUNK]
    crashed = _run(bundled_dir, "summarize", *args, env={CRASH: "1"})
    assert crashed.returncode == -9, crashed.stderr
    resumed = _run(bundled_dir, "summarize", *args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "caf\ufffd.mp4: resuming after chunk 1" in resumed.stderr
    (written,) = os.listdir(os.fsencode(out))
    assert written == b"caf\xe9.json"  # the output keeps the input's bytes
    data = json.loads((out / os.fsdecode(written)).read_text(encoding="utf-8"))
    assert data["source"].endswith("caf\ufffd.mp4") and data["summary"]["title"]


@pytest.mark.parametrize("flag", ["question", "--system", "--choices"])
def test_invalid_utf8_text_is_a_usage_error(bundled_dir, recording, flag):
    bad = b"caf\xe9"
    args = [recording, bad] if flag == "question" else [recording, "q", flag.encode(), bad]
    _one_line(_run(bundled_dir, "ask", *args), 2, "is not valid UTF-8 text (byte 0xe9 at character 4)")


# ---- resume integrity --------------------------------------------------------------------------
def test_resume_with_a_changed_model_is_refused(bundled_dir, recording, tmp_path):
    model = shutil.copytree(bundled_dir, tmp_path / "model")
    args = [recording, "--out", tmp_path / "talk.md", "--model", model, *CHUNK]
    assert _run(bundled_dir, "summarize", *args, env={CRASH: "1"}).returncode == -9
    weights = model / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x01  # a "fine-tune" of one bit, same shapes, same size
    weights.write_bytes(bytes(data))
    refused = _run(bundled_dir, "summarize", *args, "--resume")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr  # summarize reports per input
    assert "cannot resume from" in refused.stderr and "another model or dtype" in refused.stderr


# ---- Ctrl-C ------------------------------------------------------------------------------------
@pytest.mark.parametrize("delay_s, presses", [(0.0, 2), (0.3, 2), (0.1, 3)])
def test_repeated_ctrl_c_never_crashes(bundled_dir, recording, tmp_path, delay_s, presses):
    env = {**os.environ, "STREAMER_HOME": str(bundled_dir.parent.parent)}
    with subprocess.Popen(
        [sys.executable, "-m", "streamer", "summarize", str(recording), "--out", str(tmp_path / "t.md"),
         "--chunk-minutes", "0.05", "--note-tokens", "4", "--threads", "1"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
    ) as proc:  # fmt: skip
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # wait until media is being decoded and prefilled
            seen.append(line)
            if "starting" in line:
                break
        time.sleep(delay_s)
        for _ in range(presses):
            proc.send_signal(signal.SIGINT)
            time.sleep(0.05)
        rest = proc.stderr.read()
        code = proc.wait(60)
    assert code == 130, (code, "".join(seen) + rest)
    assert "Traceback" not in rest and "double free" not in rest


# ---- ask ---------------------------------------------------------------------------------------
def test_ask_on_a_file_with_nothing_decodable_is_an_error(bundled_dir, undecodable):
    _one_line(_run(bundled_dir, "ask", undecodable, "What is shown?", "--threads", "1"), 1,
              "nothing could be decoded (video: damaged packets skipped")  # fmt: skip


def test_ask_json_is_strict_even_without_a_first_token(bundled, recording, monkeypatch, capsys):
    from streamer.cli import main
    from streamer.engine.session import AnswerStream

    real = AnswerStream.result

    def no_token(self, timeout=None):
        answer = real(self, timeout)
        answer.ttft_s = float("nan")  # what an answer without any token reports
        return answer

    monkeypatch.setattr(AnswerStream, "result", no_token)
    assert main(["ask", str(recording), "q", "--json", "--max-new-tokens", "1", "--threads", "1"]) == 0
    out = json.loads(capsys.readouterr().out, parse_constant=lambda name: pytest.fail(f"{name} in --json"))
    assert out["ttft_s"] is None


def test_device_that_is_not_there_is_one_line(bundled_dir, recording):
    import torch

    if not torch.cuda.is_available():
        _one_line(_run(bundled_dir, "ask", recording, "q", "--device", "cuda"), 1, "has no usable CUDA")
    if torch.cuda.device_count() < 8:
        _one_line(_run(bundled_dir, "ask", recording, "q", "--device", "cuda:7"), 1, "device 'cuda:7'")
    _one_line(_run(bundled_dir, "ask", recording, "q", "--device", "bogus"), 2, "argument --device")
