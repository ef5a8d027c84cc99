from __future__ import annotations

import numpy as np
import pytest

from streamer.errors import InputError, UnsupportedMediaError
from streamer.media import (
    LiveVideo,
    MediaLimits,
    PcmResampler,
    SamplingPolicy,
    decode_image,
    encode_png,
    rgb_from_bytes,
)


def _tone(rate: int, seconds: float, channels: int) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    x = 0.4 * np.sin(2 * np.pi * 500 * t)
    return np.repeat(x[:, None], channels, axis=1)


@pytest.mark.parametrize("fmt,rate,channels", [("s16le", 44100, 2), ("f32le", 48000, 1), ("s16le", 16000, 1)])
def test_pcm_chunks_make_continuous_frames(fmt: str, rate: int, channels: int) -> None:
    x = _tone(rate, 3.0, channels)
    raw = (x * 32767).astype("<i2").tobytes() if fmt == "s16le" else x.astype("<f4").tobytes()
    step = (2 if fmt == "s16le" else 4) * channels
    rng = np.random.default_rng(0)
    live = PcmResampler(clock=lambda: 0.0)
    blocks, pos = [], 0
    while pos < len(raw):
        n = int(rng.integers(1, 3000)) * step
        blocks += live.push(raw[pos : pos + n], fmt, rate, channels, t_s=5.0 if pos == 0 else None)
        pos += n
    blocks += live.flush()
    wave = np.concatenate([b.waveform() for b in blocks])
    assert abs(wave.size - 48000) <= 1  # no drift
    assert np.abs(np.diff(wave[100:-100])).max() < 0.2  # no clicks at chunk boundaries
    assert blocks[0].t_s == 5.0
    t = 5.0
    for b in blocks:  # contiguous timestamps
        assert b.t_s == pytest.approx(t)
        t += b.num_frames * 0.04


def test_pcm_gaps_overlaps_and_bad_input() -> None:
    live = PcmResampler()
    chunk = np.zeros(1600, "<i2").tobytes()  # 0.1 s at 16 kHz
    live.push(chunk, "s16le", 16000, t_s=0.0)
    out = live.push(chunk, "s16le", 16000, t_s=2.1)  # a 2 s gap is filled with silence
    assert live.next_t_s == pytest.approx(2.2)
    assert sum(b.num_frames for b in out) >= 50
    with pytest.raises(InputError):
        live.push(chunk, "s16le", 16000, t_s=1.0)  # goes back in time
    for kwargs in ({"fmt": "u8"}, {"sample_rate": 10**9}, {"channels": 0}):
        args = {"fmt": "s16le", "sample_rate": 16000, "channels": 1, **kwargs}
        with pytest.raises(InputError):
            live.push(chunk, args["fmt"], args["sample_rate"], args["channels"])


def test_live_video_rate_policy_skips_decoding() -> None:
    png = encode_png(np.full((8, 8, 3), 200, np.uint8))
    live = LiveVideo(SamplingPolicy.fixed_rate(1.0))
    taken = [live.push_image(png if i % 10 == 0 else b"junk", t_s=i / 10) for i in range(25)]
    assert [f.t_s for f in taken if f is not None] == [0.0, 1.0, 2.0]  # junk was never decoded
    with pytest.raises(InputError):
        live.push_image(png, t_s=1.0)
    with pytest.raises(InputError):
        LiveVideo(SamplingPolicy.uniform(4))


def test_live_video_scene_and_raw_rgb() -> None:
    live = LiveVideo(SamplingPolicy.scene(0.1, min_interval_s=0.0, max_interval_s=100.0))
    dark, light = bytes(4 * 4 * 3), bytes([220]) * (4 * 4 * 3)
    got = [live.push_rgb(d, 4, 4, t_s=t) for t, d in enumerate([dark, dark, light, light, dark])]
    assert [f is not None for f in got] == [True, False, True, False, True]
    with pytest.raises(InputError):
        rgb_from_bytes(dark, 5, 4)


def test_decode_image_limits_and_damage() -> None:
    img = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    png = encode_png(img)
    np.testing.assert_array_equal(decode_image(png), img)
    with pytest.raises(UnsupportedMediaError):
        decode_image(png, MediaLimits(max_width=32))
    bomb = bytearray(png)
    bomb[16:24] = (100_000).to_bytes(4, "big") * 2  # header claims 100000x100000: refused before decoding
    with pytest.raises(UnsupportedMediaError):
        decode_image(bytes(bomb))
    with pytest.raises(UnsupportedMediaError):
        decode_image(b"GIF89a....")
    with pytest.raises(InputError):
        decode_image(b"")
