"""`streamer bench serve-core` runs end to end (figures are not asserted: a benchmark, not a timed test)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_serve_core_reports_both_configurations(bundled_dir):
    proc = subprocess.run(
        [sys.executable, "-m", "streamer", "bench", "serve-core", "--model", str(bundled_dir), "--seconds", "5",
         "--answer-tokens", "16", "--push-frames", "20", "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for name in ("naive", "core"):
        assert out[name]["token_gap_ms"]["tokens"] == 16
        assert out[name]["ingested_frames"] + out[name]["dropped_frames"] == 5
        assert out[name]["heartbeat_ms"]["beats"] > 0
    assert out["fast_pusher"]["frames_pushed"] == 20
    assert out["fast_pusher"]["frames_prefilled"] + out["fast_pusher"]["frames_dropped"] == 20
