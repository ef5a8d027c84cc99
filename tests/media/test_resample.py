from __future__ import annotations

import av
import numpy as np
import pytest

from streamer.errors import InputError
from streamer.media.resample import MonoResampler, frame_to_mono, pcm_to_mono


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000, 96000])
def test_chunked_equals_whole_and_no_drift(rate: int) -> None:
    rng = np.random.default_rng(rate)
    t = np.arange(rate * 3) / rate
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    r = MonoResampler()
    whole = np.concatenate([r.push(x, rate), r.flush()])
    r = MonoResampler()
    parts, pos = [], 0
    while pos < x.size:
        n = int(rng.integers(1, 2000))
        parts.append(r.push(x[pos : pos + n], rate))
        pos += n
    parts.append(r.flush())
    chunked = np.concatenate(parts)
    assert whole.size == chunked.size == 48000
    np.testing.assert_array_equal(chunked, whole)
    # the tone survives: no clicks, amplitude kept away from the edges
    assert np.abs(chunked[1000:-1000]).max() == pytest.approx(0.5, abs=0.02)


def test_16k_passes_through() -> None:
    x = np.random.default_rng(0).uniform(-1, 1, 1234).astype(np.float32)
    r = MonoResampler()
    np.testing.assert_array_equal(np.concatenate([r.push(x, 16000), r.flush()]), x)


def test_pcm_formats_and_downmix_mean() -> None:
    st = np.array([[0.5, -0.5], [0.25, 0.75]], np.float32)
    assert pcm_to_mono(st.tobytes(), "f32le", 2) == pytest.approx([0.0, 0.5])
    s16 = (np.array([16384, -32768], "<i2")).tobytes()
    assert pcm_to_mono(s16, "s16le", 1) == pytest.approx([0.5, -1.0])
    with pytest.raises(InputError):
        pcm_to_mono(b"\x00\x01\x02", "s16le", 1)
    with pytest.raises(InputError):
        pcm_to_mono(b"\x00" * 4, "mulaw", 1)


@pytest.mark.parametrize("fmt", ["s16", "s16p", "s32", "fltp", "dbl", "u8"])
def test_decoded_frame_formats(fmt: str) -> None:
    left = np.full(100, 0.5, np.float32)
    right = np.full(100, -0.25, np.float32)
    frame = av.AudioFrame.from_ndarray(np.stack([left, right]), format="fltp", layout="stereo")
    frame.sample_rate = 48000
    converted = av.AudioResampler(format=fmt, layout="stereo", rate=48000).resample(frame)[0]
    assert frame_to_mono(converted) == pytest.approx(np.full(100, 0.125), abs=1e-2)
