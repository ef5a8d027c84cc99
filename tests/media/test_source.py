from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from transformers.models.gemma4_unified.feature_extraction_gemma4_unified import (
    Gemma4UnifiedAudioFeatureExtractor,
)
from transformers.video_utils import VideoMetadata, default_sample_indices_fn

from streamer.media import AudioFrames, DecodeOptions, SamplingPolicy, VideoFrame, open_media

from ._gen import have_encoder, second_of_image, second_of_tone, write_media

# (container extension, video encoder, pixel format, audio encoder, encoder options)
MATRIX = [
    ("mp4", "libx264", "yuv420p", "aac", {}),
    ("mkv", "libx265", "yuv420p", "flac", {"x265-params": "log-level=none"}),
    ("webm", "libvpx", "yuv420p", "libopus", {}),
    ("webm", "libvpx-vp9", "yuv420p", "libopus", {}),
    ("avi", "mpeg4", "yuv420p", "pcm_s16le", {}),
    ("mkv", "mjpeg", "yuvj420p", "libmp3lame", {}),
    ("mov", "libx264", "yuv420p", "pcm_s16le", {}),
]


def _check_video(frames: list[VideoFrame]) -> None:
    assert frames
    for f in frames:
        assert f.image.dtype == np.uint8 and f.image.ndim == 3 and f.image.shape[2] == 3
        assert second_of_image(f.image) == math.floor(f.t_s + 1e-6), f"frame at {f.t_s:.3f} s"


def _check_audio(blocks: list[AudioFrames], margin_s: float = 0.06) -> int:
    checked = 0
    for b in blocks:
        assert b.frames.dtype == np.float32 and b.frames.shape[1] == 640
        for i, row in enumerate(b.frames):
            t = b.t_s + i * 0.04
            if t % 1 < margin_s or t % 1 > 1 - 0.04 - margin_s or t + 0.04 > b.end_s:
                continue
            assert second_of_tone(row) == math.floor(t), f"audio frame at {t:.3f} s"
            checked += 1
    return checked


@pytest.mark.parametrize("ext,vcodec,pix_fmt,acodec,vopts", MATRIX, ids=[f"{m[1]}-{m[3]}" for m in MATRIX])
def test_codec_matrix_timestamps_match_content(
    media_dir: Path, ext: str, vcodec: str, pix_fmt: str, acodec: str, vopts: dict[str, str]
) -> None:
    if not (have_encoder(vcodec) and have_encoder(acodec)):
        pytest.skip(f"this PyAV build cannot encode {vcodec}/{acodec}")
    path = write_media(
        media_dir / f"m_{vcodec}_{acodec}.{ext}", vcodec=vcodec, acodec=acodec, pix_fmt=pix_fmt, vopts=vopts
    )
    with open_media(path, SamplingPolicy.fixed_rate(2.0)) as media:
        assert media.info.video is not None and media.info.audio is not None
        assert media.info.duration_s == pytest.approx(4.0, abs=0.15)
        frames = list(media.video())
        blocks = list(media.audio())
        assert media.warnings == []
    _check_video(frames)
    assert [round(f.t_s * 2) for f in frames] == list(range(8))  # one per 0.5 s tick
    assert _check_audio(blocks) > 50
    assert sum(b.num_valid_samples for b in blocks) == pytest.approx(64000, abs=1200)


def test_items_merge_in_timestamp_order(h264_aac: Path) -> None:
    with open_media(h264_aac) as media:
        items = list(media.items())
    times = [i.t_s for i in items]
    assert times == sorted(times)
    assert sum(isinstance(i, VideoFrame) for i in items) == 6
    # 6 s of AAC decodes to 6 s plus up to one codec frame (1024 samples at 48 kHz)
    assert sum(i.num_frames for i in items if isinstance(i, AudioFrames)) in (150, 151)


def test_uniform_picks_reference_indices(media_dir: Path) -> None:
    path = write_media(media_dir / "uniform.mp4", acodec=None, duration_s=20.0, fps=25, gop=25)
    total = 500
    for n in (7, 32):
        meta = VideoMetadata(total_num_frames=total, fps=25.0)
        ref = list(default_sample_indices_fn(meta, num_frames=n))
        for opts in (DecodeOptions(), DecodeOptions(threads=False, skip_nonref=False, seek=False)):
            with open_media(path, SamplingPolicy.uniform(n), options=opts) as media:
                assert media.info.video is not None and media.info.video.num_frames == total
                frames = list(media.video())
            assert [round(f.t_s * 25) for f in frames] == ref
            _check_video(frames)


def test_seeking_and_skipping_pick_same_content(media_dir: Path) -> None:
    path = write_media(media_dir / "sparse.mkv", acodec=None, duration_s=20.0, fps=25, gop=10)
    policy = SamplingPolicy.fixed_rate(0.25)
    fast = list(open_media(path, policy).video())
    slow = list(open_media(path, policy, options=DecodeOptions(False, False, False)).video())
    assert [f.t_s for f in fast] == pytest.approx([f.t_s for f in slow], abs=0.2)
    assert len(fast) == 5
    _check_video(fast)


def test_variable_frame_rate(media_dir: Path) -> None:
    rng = np.random.default_rng(1)
    times = np.cumsum(rng.uniform(0.02, 0.4, 40))
    times = [0.0] + [round(t, 3) for t in times if t < 6.0]
    path = write_media(media_dir / "vfr.mkv", frame_times=times, acodec=None, fps=30)
    with open_media(path, SamplingPolicy.fixed_rate(1.0)) as media:
        _check_video(list(media.video()))  # default: non-reference frames may be skipped
    exact = DecodeOptions(skip_nonref=False)
    with open_media(path, SamplingPolicy.fixed_rate(1.0), options=exact) as media:
        frames = list(media.video())
    _check_video(frames)
    got = [f.t_s for f in frames]
    expected = [
        next(t for t in times if t >= k - 1e-3) for k in range(6) if any(t >= k - 1e-3 for t in times)
    ]
    assert got == pytest.approx(sorted(set(expected)), abs=2e-3)


@pytest.mark.parametrize("ext", ["mkv", "ts"])
def test_nonzero_start_time(media_dir: Path, ext: str) -> None:
    path = write_media(
        media_dir / f"start.{ext}", start_s=7.0, duration_s=4.0, fmt="mpegts" if ext == "ts" else None
    )
    with open_media(path, SamplingPolicy.fixed_rate(1.0)) as media:
        assert media.info.start_s >= 6.9
        frames = list(media.video())
        blocks = list(media.audio())
    _check_video(frames)
    assert frames[0].t_s == pytest.approx(0.0, abs=0.05)
    assert _check_audio(blocks, margin_s=0.1) > 40


def test_audio_matches_reference_extractor_for_decoded_waveform(h264_aac: Path) -> None:
    blocks = list(open_media(h264_aac).audio())
    wave = np.concatenate([b.waveform() for b in blocks])
    ref = Gemma4UnifiedAudioFeatureExtractor()(wave, return_tensors="np")["input_features"][0]
    np.testing.assert_array_equal(np.concatenate([b.frames for b in blocks]), ref)
    assert [b.t_s for b in blocks] == pytest.approx(np.arange(len(blocks)) * 1.0)


def test_scene_policy(media_dir: Path) -> None:
    path = write_media(media_dir / "scene.mp4", acodec=None, duration_s=6.0, fps=10)
    with open_media(path, SamplingPolicy.scene(0.03, min_interval_s=0.3, max_interval_s=10.0)) as media:
        frames = list(media.video())
    _check_video(frames)
    assert [round(f.t_s, 1) for f in frames] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]  # one per colour change
    with open_media(path, SamplingPolicy.scene(0.03, min_interval_s=0.3, max_interval_s=0.5)) as media:
        assert len(list(media.video())) >= 12


def test_audio_only_and_video_only(media_dir: Path) -> None:
    v = write_media(media_dir / "video_only.mp4", acodec=None)
    a = write_media(media_dir / "audio_only.m4a", vcodec=None, fmt="mp4")
    with open_media(v) as media:
        assert media.info.audio is None and list(media.audio()) == []
        assert all(isinstance(i, VideoFrame) for i in media.items())
    with open_media(a) as media:
        assert media.info.video is None and list(media.video()) == []
        assert _check_audio(list(media.items())) > 50


def test_partial_iteration_and_close(h264_aac: Path) -> None:
    media = open_media(h264_aac)
    it = media.items()
    next(it)
    media.close()
    with open_media(h264_aac) as media2:
        assert len(list(media2.video())) == 6


def test_one_frame_a_second_in_matroska_with_opus_keeps_its_first_frame(tmp_path: Path) -> None:
    # Such a file can start at the Opus pre-roll (13 ms), after its first picture (at 0).
    from dataclasses import replace

    from streamer.demo.dataset import recording_of
    from streamer.demo.encode import write_recording

    if not have_encoder("libopus"):
        pytest.skip("this PyAV build cannot encode opus")
    window = recording_of({"kind": "timeline", "seed": 3_600_034, "from_s": 0, "to_s": 5, "fps": 1})
    rec = replace(window, container="mkv", video_codec="libx264", audio_codec="libopus", sample_rate=16000)
    path = tmp_path / "opus_1fps.mkv"
    write_recording(rec, path)
    with open_media(path, SamplingPolicy.fixed_rate(1.0)) as media:
        assert media.info.start_s > 0  # what makes this file a case
        frames = list(media.video())
    assert [f.t_s for f in frames] == [0.0, 1.0, 2.0, 3.0, 4.0]
