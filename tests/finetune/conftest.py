from __future__ import annotations

import dataclasses

import pytest

from streamer.demo.encode import write_recording
from streamer.demo.scene import sample_clip


@pytest.fixture(scope="session")
def small_clips(tmp_path_factory):
    """Four demo clips made small and short (320x180, 10 fps, 4 s) so tests decode them fast."""
    out = tmp_path_factory.mktemp("clips")
    paths = []
    for seed in range(4):
        rec = dataclasses.replace(sample_clip(seed), width=320, height=180, fps=10, duration_s=4.0)
        (a,) = rec.appearances
        beeps = dataclasses.replace(a.beeps, starts_s=a.beeps.starts_s[:2], lengths_s=a.beeps.lengths_s[:2])
        rec = dataclasses.replace(rec, appearances=(dataclasses.replace(a, t1_s=4.0, beeps=beeps),))
        paths.append(write_recording(rec, out / f"clip{seed}{rec.suffix}"))
    return paths
