"""Hostile and broken files: a clear error or a partial result with warnings, never a crash."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from streamer.errors import MediaError, UnsupportedMediaError
from streamer.media import MediaLimits, SamplingPolicy, open_media

from ._gen import wav_bytes, write_media


def _decode_all(path: Path, limits: MediaLimits | None = None) -> tuple[list, list, list[str]]:
    with open_media(path, SamplingPolicy.fixed_rate(1.0), limits) as media:
        video = list(media.video())
        audio = list(media.audio())
        return video, audio, list(media.warnings)


@pytest.fixture(scope="module")
def good_mkv(media_dir: Path) -> Path:
    return write_media(media_dir / "good.mkv", duration_s=6.0, fps=10, acodec="libopus", gop=10)


@pytest.mark.parametrize(
    "name,content",
    [
        ("empty.mp4", b""),
        ("random.mkv", np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes()),
        ("notes.mp4", b"These are meeting notes, not a video.\n" * 50),
        ("page.webm", b"<html><body>hello</body></html>"),
    ],
)
def test_not_media_is_a_clear_error(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(MediaError):
        open_media(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no such file"):
        open_media(tmp_path / "nope.mp4")
    with pytest.raises(MediaError, match="not a regular file"):
        open_media(tmp_path)


def test_playlists_and_concat_lists_are_refused(tmp_path: Path, good_mkv: Path) -> None:
    (tmp_path / "list.ffconcat").write_text(f"ffconcat version 1.0\nfile '{good_mkv}'\n")
    (tmp_path / "live.m3u8").write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:6.0,\n{good_mkv}\n#EXT-X-ENDLIST\n"
    )
    (tmp_path / "remote.m3u8").write_text("#EXTM3U\n#EXTINF:6.0,\nhttp://127.0.0.1:9/x.ts\n#EXT-X-ENDLIST\n")
    for name in ("list.ffconcat", "live.m3u8", "remote.m3u8"):
        with pytest.raises(MediaError):
            open_media(tmp_path / name)


def test_truncated_mkv_decodes_what_is_there(tmp_path: Path, good_mkv: Path) -> None:
    data = good_mkv.read_bytes()
    path = tmp_path / "cut.mkv"
    path.write_bytes(data[: len(data) * 55 // 100])
    video, audio, warnings = _decode_all(path)
    assert 1 <= len(video) < 6
    assert audio and sum(b.num_valid_samples for b in audio) < 6 * 16000
    assert any("truncated" in w for w in warnings)


def test_truncated_mp4(tmp_path: Path, media_dir: Path) -> None:
    fast = write_media(media_dir / "faststart.mp4", duration_s=6.0, fps=10)
    data = fast.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    try:
        video, audio, warnings = _decode_all(path)
    except MediaError:
        return  # index at the end of the file: nothing to decode without it, and a clear error
    assert warnings


def test_bit_rot_in_the_middle_keeps_going(tmp_path: Path, good_mkv: Path) -> None:
    data = bytearray(good_mkv.read_bytes())
    rng = np.random.default_rng(3)
    mid = len(data) // 2
    data[mid : mid + 3000] = rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()
    path = tmp_path / "rot.mkv"
    path.write_bytes(bytes(data))
    video, audio, _ = _decode_all(path)
    assert video and video[-1].t_s >= 4.0  # frames after the damage still come out
    assert audio and audio[-1].end_s >= 4.0


def test_lost_data_without_keyframes_warns(tmp_path: Path, media_dir: Path) -> None:
    src = write_media(media_dir / "longgop.mkv", duration_s=8.0, fps=10, acodec=None, gop=300)
    data = bytearray(src.read_bytes())
    mid = len(data) * 2 // 3
    data[mid : mid + 4000] = bytes(4000)
    path = tmp_path / "lost.mkv"
    path.write_bytes(bytes(data))
    video, _, warnings = _decode_all(path)
    assert video and warnings  # frames until the damage, then a warning (no keyframe to resume at)


def test_wav_claiming_4_gib(tmp_path: Path) -> None:
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    data = bytearray(wav_bytes(tone, 16000))
    data[4:8] = struct.pack("<I", 0xFFFFFFF0)
    data[40:44] = struct.pack("<I", 0xFFFFFFE0)
    path = tmp_path / "huge.wav"
    path.write_bytes(bytes(data))
    video, audio, warnings = _decode_all(path)
    assert video == []
    assert sum(b.num_valid_samples for b in audio) == 16000  # FFmpeg bounds the claim by the file size


def test_absurd_sample_rate_and_unknown_codec(tmp_path: Path) -> None:
    data = bytearray(wav_bytes(np.zeros(1000), 16000))
    data[24:28] = struct.pack("<I", 2_000_000_000)
    (tmp_path / "rate.wav").write_bytes(bytes(data))
    with pytest.raises(MediaError):
        open_media(tmp_path / "rate.wav")
    data = bytearray(wav_bytes(np.zeros(1000), 16000))
    data[20:22] = struct.pack("<H", 0x7777)  # no such WAVE format tag
    (tmp_path / "codec.wav").write_bytes(bytes(data))
    with pytest.raises(MediaError):
        open_media(tmp_path / "codec.wav")


def test_stream_over_limits_is_dropped_or_refused(media_dir: Path) -> None:
    small = MediaLimits(max_width=64)
    with_audio = write_media(media_dir / "limits.mp4", duration_s=2.0)
    with open_media(with_audio, limits=small) as media:
        assert media.info.video is None and media.info.audio is not None
        assert any("over the limit" in w for w in media.warnings)
    video_only = write_media(media_dir / "limits_v.mp4", duration_s=2.0, acodec=None)
    with pytest.raises(UnsupportedMediaError, match="over the limit"):
        open_media(video_only, limits=small)


def test_duration_limit_stops_decoding(media_dir: Path) -> None:
    path = write_media(media_dir / "long.mkv", duration_s=6.0, acodec="flac")
    video, audio, warnings = _decode_all(path, MediaLimits(max_duration_s=2.0))
    assert max(v.t_s for v in video) <= 2.0
    assert audio[-1].end_s <= 2.2
    assert any("limit" in w for w in warnings)
