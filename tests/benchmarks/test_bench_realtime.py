"""`streamer bench realtime` runs end to end (figures are not asserted: a benchmark, not a timed test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_realtime_reports_both_endpoints():
    proc = subprocess.run(
        [sys.executable, "-m", "streamer", "bench", "realtime", "--seconds", "3", "--questions", "1",
         "--answer-tokens", "8", "--repeats", "1", "--json"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    core = out["core_median_us"]
    for kind in ("audio", "frame", "question"):
        assert core[kind]["live"] > 0 and core[kind]["realtime"] > 0
    assert core["commit"]["realtime"] > 0 and core["commit"]["live"] is None  # live has no commit
    assert 0 < core["frame:own"]["realtime"] < core["frame"]["realtime"]
    ws = out["websocket"]
    assert ws["live"]["sent"] == 3 * 11 + 1  # 10 audio chunks + a frame per second, one question
    assert ws["realtime"]["sent"] == 3 * 12 + 2  # + a commit per second; the question is two events
    assert ws["realtime"]["received"] > ws["live"]["received"]
