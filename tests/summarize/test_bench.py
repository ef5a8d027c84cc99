"""`streamer bench summarize` runs end to end on a few seconds of generated 720p (not a timing test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_bench_summarize_reports_phases_rss_and_the_h100_estimate(bundled_dir, tmp_path):
    env = {**os.environ, "STREAMER_HOME": str(bundled_dir.parent.parent)}
    proc = subprocess.run(
        [sys.executable, "-m", "streamer", "bench", "summarize", "--minutes", "0.1", "--chunk-minutes", "0.05",
         "--threads", "1", "--cache-dir", str(tmp_path), "--json"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    f = json.loads(proc.stdout)
    assert f["media_s"] >= 6 and f["chunks"] == 2 and f["x_realtime"] > 0 and f["peak_rss_mb"] > 50
    assert set(f["phases_s"]) >= {"decode_wait", "embed", "prefill", "generate", "other"}
    assert f["tokens"]["context"] > 6 * 70
    h = f["h100_estimate"]
    assert h["decode_s_per_token"] > 0.007 and h["x_realtime_gpu_only"] > h["x_realtime_serial"] > 0
