from __future__ import annotations

import numpy as np
import pytest
from transformers.models.gemma4_unified.feature_extraction_gemma4_unified import (
    Gemma4UnifiedAudioFeatureExtractor,
)

from streamer.media.framing import AudioFramer
from streamer.media.types import FRAME_SAMPLES


def _frame_all(wave: np.ndarray, rng: np.random.Generator, eager: bool = False, t0: float = 0.0):
    framer = AudioFramer(block_frames=25)
    framer.start(t0)
    blocks = []
    pos = 0
    while pos < wave.size:
        n = int(rng.integers(1, 5000))
        blocks += framer.push(wave[pos : pos + n], eager=eager)
        pos += n
    blocks += framer.flush()
    return blocks


@pytest.mark.parametrize("length", [1, 639, 640, 641, 16000, 16001, 40_000])
@pytest.mark.parametrize("eager", [False, True])
def test_frames_match_reference_feature_extractor(length: int, eager: bool) -> None:
    rng = np.random.default_rng(length)
    wave = rng.uniform(-1, 1, length).astype(np.float32)
    blocks = _frame_all(wave, rng, eager=eager)
    ours = np.concatenate([b.frames for b in blocks])
    ref = Gemma4UnifiedAudioFeatureExtractor()(wave, return_tensors="np")["input_features"][0]
    np.testing.assert_array_equal(ours, ref)
    assert sum(b.num_valid_samples for b in blocks) == length
    assert all(b.num_valid_samples == b.num_frames * FRAME_SAMPLES for b in blocks[:-1])


def test_block_timestamps_and_sizes() -> None:
    rng = np.random.default_rng(0)
    blocks = _frame_all(np.zeros(16000 * 3 + 100, np.float32), rng, t0=2.5)
    assert [b.t_s for b in blocks] == pytest.approx([2.5, 3.5, 4.5, 5.5])
    assert [b.num_frames for b in blocks] == [25, 25, 25, 1]
    assert blocks[-1].num_valid_samples == 100 and blocks[-1].end_s == pytest.approx(5.5 + 100 / 16000)
    assert blocks[-1].waveform().shape == (100,)


def test_silence_and_eager_latency() -> None:
    framer = AudioFramer()
    out = framer.push(np.ones(700, np.float32), eager=True)
    assert len(out) == 1 and out[0].num_frames == 1  # one frame now, 60 samples held
    out = framer.push_silence(16000 * 2, eager=True)
    assert sum(b.num_frames for b in out) == (60 + 32000) // 640
    assert framer.next_sample_s == pytest.approx((700 + 32000) / 16000)
