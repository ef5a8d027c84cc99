"""A bounded load test on loopback: 20 live WebSocket sessions at 1 fps + audio with the bundled model.

Prints its figures (``pytest -s``); ``streamer bench serve --parts load`` runs the longer version.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from streamer.benchmarks.serve import LoadConfig, run_load

from .server_proc import serve_process

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


def test_twenty_live_sessions(bundled_dir):
    env = {"STREAMER_HOME": os.environ["STREAMER_HOME"]}
    cfg = LoadConfig(sessions=20, seconds=30.0, fps=1.0, ask_every_s=10.0, answer_tokens=8)
    with serve_process("--stats-interval-s", "1", env=env) as server:
        result = asyncio.run(run_load(server.ws, cfg, rss=lambda: _rss_mb(server.proc.pid)))
        assert server.terminate() == 0
    print(
        f"\nload: {result.sessions} sessions x {result.seconds:g} s: {result.answers} answers, "
        f"latency p50 {result.answer_latency_p50_s:.2f} s p99 {result.answer_latency_p99_s:.2f} s, "
        f"TTFT p50 {result.ttft_p50_s:.2f} s p99 {result.ttft_p99_s:.2f} s, frames sent {result.frames_sent} "
        f"in context {result.frames_in_context} dropped {result.dropped_frames}, "
        f"audio sent {result.audio_s_sent} s in context {result.audio_s_in_context} s, "
        f"RSS {result.rss_mb[0][1]:.0f} -> max {max(mb for _, mb in result.rss_mb):.0f} -> {result.rss_mb[-1][1]:.0f} MiB "
        f"(growth after warm-up {result.rss_growth_after_warmup_pct} %)"
    )
    assert result.errors == []
    assert result.answers >= 2 * cfg.sessions  # every session asked at least twice; all answered
    assert result.frames_sent == cfg.sessions * cfg.seconds * cfg.fps
    assert result.frames_in_context + result.dropped_frames <= result.frames_sent
    assert result.frames_in_context > 0 and result.audio_s_in_context > 0
    assert result.rss_growth_after_warmup_pct is not None and result.rss_growth_after_warmup_pct < 10
