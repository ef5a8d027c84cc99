"""Smoke tests: the gRPC parts of `streamer bench serve` and examples/robot_controller.py run."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from streamer.benchmarks import serve_grpc

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parents[2]


def test_bench_parts_on_the_fake_engine():
    args = argparse.Namespace(asks=12, frames=10, fake=True, model=None, threads=None)
    ask = serve_grpc.PARTS["grpc-ask"](args, None)
    assert ask["fake.prompt.calls"] == 12 and ask["fake.jpeg.calls"] == 12
    assert ask["fake.jpeg.grpc_p50_ms"] > 0 and ask["fake.prompt.transport_p50_ms"] > 0
    ingest = serve_grpc.PARTS["grpc-ingest"](args, None)
    assert ingest["frames"] == 10 and ingest["grpc_ms_per_frame"] > 0


def test_bench_serve_lists_the_grpc_parts():
    from streamer.benchmarks.serve import PARTS

    assert {"grpc-ask", "grpc-ingest"} <= set(PARTS)


def test_robot_controller_example(tmp_path):
    from streamer.media.synth import write_synthetic_recording

    video = write_synthetic_recording(tmp_path / "cam.mp4", minutes=0.05, size=(160, 96), fps=10)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRPC_VERBOSITY": "ERROR"}
    serve = [sys.executable, "-m", "streamer", "serve", "--fake", "--http-port", "0", "--grpc-port", "0"]
    with subprocess.Popen(
        serve, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    ) as server:
        try:
            match = re.search(r"grpc on (\S+):(\d+)", server.stdout.readline())
            assert match
            done = subprocess.run(
                [sys.executable, str(ROOT / "examples" / "robot_controller.py"), str(video),
                 "--target", f"{match.group(1)}:{match.group(2)}", "--hz", "5", "--seconds", "2",
                 "--choices", "left,right,stop"],
                capture_output=True, text=True, env=env, timeout=120,
            )  # fmt: skip
        finally:
            server.terminate()
            server.wait(30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ticks: 10 at 5 Hz, deadline 500 ms" in done.stdout
    assert re.search(r"latency \(all calls, ms\): p50 [\d.]+ +p90 [\d.]+ +p99 [\d.]+", done.stdout)


def test_ask_at_rate_for_load_tests():
    import asyncio

    from streamer.engine.fake import FakeEngine
    from streamer.serve.grpc_testing import grpc_test_server

    async def main():
        async with grpc_test_server(FakeEngine(answer="yes")) as t:
            return await serve_grpc.ask_at_rate(t.target, hz=10, seconds=1.0)

    figures = asyncio.run(main())
    assert figures["calls"] == 10 and figures["ok"] + figures["deadline_exceeded"] == 10
    assert figures["errors"] == [] and figures["latency_p50_s"] is not None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("case", ["no server", "missing file", "not media", "no video"])
def test_robot_controller_user_errors_are_one_line_and_never_hang(tmp_path, case):
    from streamer.media.synth import write_synthetic_recording

    video = write_synthetic_recording(tmp_path / "cam.mp4", minutes=0.02, size=(64, 48), fps=5)
    (tmp_path / "notes.mp4").write_text("not a video\n")
    audio_only = tmp_path / "mic.wav"
    audio_only.write_bytes(b"RIFF$}\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80>\x00\x00\x00}\x00\x00"
                           b"\x02\x00\x10\x00data\x00}\x00\x00" + b"\x00" * 32000)  # fmt: skip
    path, message = {
        "no server": (video, "no gRPC server answered"),
        "missing file": (tmp_path / "nope.mp4", "no such file"),
        "not media": (tmp_path / "notes.mp4", "not a media file"),
        "no video": (audio_only, "no video stream"),
    }[case]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRPC_VERBOSITY": "ERROR"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "robot_controller.py"), str(path),
         "--target", f"127.0.0.1:{_free_port()}", "--seconds", "1", "--connect-timeout-s", "1"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stdout + done.stderr
    assert lines[0].startswith("robot_controller: error: ") and message in lines[0], done.stderr
