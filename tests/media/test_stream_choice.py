"""Media the probe tells about: which of several streams is used, and a WAV header that overclaims."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from streamer.media import open_media

from ._gen import wav_bytes


def _two_video_streams(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as c:
        streams = []
        for w, h in ((64, 48), (32, 32)):
            s = c.add_stream("mpeg4", rate=2)
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            streams.append(s)
        for i in range(4):
            for s in streams:
                frame = av.VideoFrame.from_ndarray(
                    np.full((s.height, s.width, 3), i * 40, np.uint8), format="rgb24"
                )
                frame.pts = i
                for packet in s.encode(frame):
                    c.mux(packet)
        for s in streams:
            for packet in s.encode():
                c.mux(packet)
    return path


def test_two_video_streams_say_which_is_used(tmp_path):
    with open_media(_two_video_streams(tmp_path / "two.mkv")) as media:
        frames = [item for item in media.items()]
        assert "2 video streams: using stream #0 (mpeg4 64x48); ignoring #1" in media.warnings
    assert frames and all(f.image.shape[:2] == (48, 64) for f in frames)


def test_wav_header_claiming_10_hours_with_2_seconds_warns(tmp_path):
    data = bytearray(wav_bytes(np.zeros(32_000), 16_000))
    claimed = 16_000 * 2 * 3600 * 10
    data[40:44] = struct.pack("<I", claimed)
    data[4:8] = struct.pack("<I", claimed + 36)
    (tmp_path / "ten.wav").write_bytes(bytes(data))
    with open_media(tmp_path / "ten.wav") as media:
        audio = sum(a.num_valid_samples for a in media.audio())
        assert any("claims 36000.0 s of audio but the file holds 2.0 s" in w for w in media.warnings), (
            media.warnings
        )
    assert audio == 32_000
    (tmp_path / "ok.wav").write_bytes(wav_bytes(np.zeros(32_000), 16_000))
    with open_media(tmp_path / "ok.wav") as media:
        assert media.warnings == []
