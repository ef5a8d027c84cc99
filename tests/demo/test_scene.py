"""The demo generator draws exactly the issue's distribution, reproducibly, and writes files our decoders read."""

from __future__ import annotations

import numpy as np
import pytest

from streamer.demo.encode import write_recording
from streamer.demo.scene import (
    BACKGROUNDS,
    COLOURS,
    FORMATS,
    LAST_GAP_S,
    MOTIONS,
    SHADE,
    SHAPES,
    TONES,
    render_audio,
    render_frame,
    sample_clip,
    sample_timeline,
    shape_box,
)
from streamer.demo.tasks import clip_answers, colour_at, notes_events, sampled_times
from streamer.media import AudioFrames, SamplingPolicy, VideoFrame, open_media

SEEDS = range(300)


def _check_beeps(b, lo: float, hi: float) -> None:
    assert 1 <= b.count <= 4
    assert b.tone in TONES and TONES[b.tone][0] <= b.freq_hz <= TONES[b.tone][1]
    assert 0.3 <= b.amplitude <= 0.6
    assert 0.3 - 1e-3 <= b.starts_s[0] - lo <= 0.8 + 1e-3
    for length in b.lengths_s:
        assert 0.15 - 1e-3 <= length <= 0.3 + 1e-3
    for (s0, l0), s1 in zip(zip(b.starts_s, b.lengths_s, strict=True), b.starts_s[1:], strict=False):
        assert 0.25 - 1e-3 <= s1 - (s0 + l0) <= 0.6 + 1e-3
    assert b.end_s <= hi


def _check_shape(a, rec) -> None:
    assert a.colour in COLOURS and a.shape in SHAPES and a.motion in MOTIONS
    assert all(abs(c - r) <= SHADE for c, r in zip(a.rgb, COLOURS[a.colour], strict=True))
    assert 0.20 <= a.size <= 0.35
    if a.motion == "still":
        assert a.travel == 0
    else:
        assert 0.30 - 1e-6 <= a.travel <= 0.70 + 1e-6
        (x0, y0), (x1, y1) = a.start_xy, a.end_xy
        expected = {"left": x1 < x0, "right": x1 > x0, "up": y1 < y0, "down": y1 > y0}[a.motion]
        assert expected and (x0 == x1 or y0 == y1)
    for t in (a.t0_s, (a.t0_s + a.t1_s) / 2, a.t1_s - 1e-6):  # in frame all the way
        left, top, right, bottom = shape_box(a, t, rec.width, rec.height)
        assert left >= -1e-6 and top >= -1e-6 and right <= rec.width + 1e-6 and bottom <= rec.height + 1e-6


def test_clips_follow_the_distribution():
    kinds = {"colour": set(), "shape": set(), "motion": set(), "beeps": set(), "tone": set(), "bg": set()}
    for seed in SEEDS:
        rec = sample_clip(seed)
        assert 4.0 <= rec.duration_s <= 8.0 and 320 <= rec.width <= 960 and 10 <= rec.fps <= 30
        assert rec.width / rec.height == pytest.approx(
            16 / 9, abs=0.02
        ) or rec.width / rec.height == pytest.approx(4 / 3, abs=0.02)
        assert 16_000 <= rec.sample_rate <= 48_000
        assert (rec.container, rec.video_codec, rec.audio_codec) in {f[:3] for f in FORMATS}
        lo, hi = BACKGROUNDS[rec.background]
        assert all(lo - 4 <= c <= hi + 4 for c in rec.background_rgb)
        (a,) = rec.appearances
        assert (a.t0_s, a.t1_s) == (0.0, rec.duration_s)
        _check_shape(a, rec)
        _check_beeps(a.beeps, 0.0, rec.duration_s)
        for k, v in clip_answers(rec).items():
            kinds[k].add(v)
        kinds["bg"].add(rec.background)
    # every value of every question is drawn
    assert (
        kinds["colour"] == set(COLOURS) and kinds["shape"] == set(SHAPES) and kinds["motion"] == set(MOTIONS)
    )
    assert kinds["beeps"] == {"one", "two", "three", "four"} and kinds["tone"] == set(TONES)
    assert kinds["bg"] == set(BACKGROUNDS)


def test_timelines_follow_the_distribution():
    for seed in range(40):
        rec = sample_timeline(seed)
        assert 30.0 <= rec.duration_s <= 120.0 and rec.appearances
        prev_end = 0.0
        for a in rec.appearances:
            assert 3.0 <= a.t1_s - a.t0_s <= 8.0 + 1e-3
            assert a.t0_s - prev_end >= 1.5 - 1e-3  # a blank gap before each shape
            _check_shape(a, rec)
            _check_beeps(a.beeps, a.t0_s, a.t1_s)
            prev_end = a.t1_s
        assert rec.duration_s - prev_end >= LAST_GAP_S - 1e-3


def test_seeded_and_distinct():
    assert sample_clip(7) == sample_clip(7) and sample_clip(7) != sample_clip(8)
    assert sample_timeline(3) == sample_timeline(3)
    rec = sample_clip(7)
    assert np.array_equal(render_audio(rec), render_audio(rec))
    assert np.array_equal(render_frame(rec, 1.0), render_frame(rec, 1.0))


def test_pixels_and_samples_show_what_the_spec_says():
    rec = sample_clip(11)
    (a,) = rec.appearances
    frame = render_frame(rec, 1.0)
    left, top, right, bottom = shape_box(a, 1.0, rec.width, rec.height)
    cy, cx = int((top + bottom) / 2 + (bottom - top) * 0.15), int((left + right) / 2)  # inside every shape
    assert np.abs(frame[cy, cx].astype(int) - a.rgb).max() <= 1
    assert np.abs(frame[2, 2].astype(int) - rec.background_rgb).max() == 0
    audio = render_audio(rec)
    rate, b = rec.sample_rate, a.beeps
    loud = np.abs(audio[int(b.starts_s[0] * rate) : int((b.starts_s[0] + b.lengths_s[0]) * rate)]).max()
    quiet = np.abs(audio[: int(0.25 * rate)]).max()
    assert loud > 0.25 and quiet < 0.1


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 5])  # mkv, webm, mp4, mp4, mov: every format's encoder
def test_written_files_decode_to_the_answers(seed, tmp_path):
    rec = sample_clip(seed)
    path = write_recording(rec, tmp_path / f"c{rec.suffix}")
    with open_media(path, SamplingPolicy.fixed_rate(1.0)) as media:
        items = list(media.items())
        assert not media.warnings
    frames = [i for i in items if isinstance(i, VideoFrame)]
    assert [round(f.t_s, 3) for f in frames] == [round(t, 3) for t in sampled_times(rec)]
    assert frames[0].image.shape == (rec.height, rec.width, 3)
    audio = np.concatenate([i.waveform() for i in items if isinstance(i, AudioFrames)])
    assert abs(audio.size / 16000 - rec.duration_s) < 0.1
    # the shape's colour survives the codec
    (a,) = rec.appearances
    left, top, right, bottom = shape_box(a, frames[1].t_s, rec.width, rec.height)
    cy, cx = int((top + bottom) / 2 + (bottom - top) * 0.15), int((left + right) / 2)
    assert np.abs(frames[1].image[cy, cx].astype(int) - a.rgb).max() < 30


def test_timeline_answers():
    rec = sample_timeline(5)
    times = sampled_times(rec)
    assert {colour_at(rec, t) for t in times} - {"none"} <= set(COLOURS)
    assert colour_at(rec, 0.0) == "none"
    # every appearance is noted exactly once, whatever the chunk length
    for chunk in (10.0, 15.0, 60.0):
        lines = []
        starts = np.arange(0, rec.duration_s, chunk)
        for i, s in enumerate(starts):
            last = i == len(starts) - 1
            lines += notes_events(rec, s, np.inf if last else s + chunk)
        assert len(lines) == len(rec.appearances)
