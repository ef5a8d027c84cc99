from __future__ import annotations

import numpy as np
import pytest
from transformers.video_utils import VideoMetadata, default_sample_indices_fn

from streamer.media.policy import (
    FixedRateSampler,
    SamplingMode,
    SamplingPolicy,
    SceneSampler,
    TargetListSampler,
    make_sampler,
    scene_score,
    uniform_frame_indices,
)


@pytest.mark.parametrize("total", [1, 7, 31, 32, 33, 100, 150, 1799, 90001])
@pytest.mark.parametrize("n", [1, 8, 32])
def test_uniform_indices_match_reference(total: int, n: int) -> None:
    ours = uniform_frame_indices(total, n)
    if n > total:
        assert list(ours) == list(range(total))  # the reference raises; we take every frame
        return
    ref = default_sample_indices_fn(VideoMetadata(total_num_frames=total, fps=25.0), num_frames=n)
    np.testing.assert_array_equal(ours, ref)


def test_uniform_sampler_targets_are_reference_timestamps() -> None:
    sampler = make_sampler(SamplingPolicy.uniform(32), num_frames=1000, fps=25.0)
    meta = VideoMetadata(total_num_frames=1000, fps=25.0)
    meta.frames_indices = list(default_sample_indices_fn(meta, num_frames=32))
    taken = [i / 25.0 for i in range(1000) if sampler.offer(i / 25.0)]
    assert taken == pytest.approx(meta.timestamps)


def test_fixed_rate_takes_first_frame_at_or_after_each_tick() -> None:
    s = FixedRateSampler(1.0)
    times = [i / 30 for i in range(200)]
    taken = [t for t in times if s.offer(t)]
    assert taken == pytest.approx([0, 1, 2, 3, 4, 5, 6])


def test_fixed_rate_sparse_vfr_skips_empty_ticks() -> None:
    s = FixedRateSampler(2.0)
    taken = [t for t in [0.0, 0.1, 3.3, 3.4, 3.6, 10.0] if s.offer(t)]
    assert taken == [0.0, 3.3, 3.6, 10.0]  # 3.3 fills tick 3.0, 3.6 tick 3.5
    assert s.next_target_s() == pytest.approx(10.5)


def test_target_list_collapses_targets_between_frames() -> None:
    s = TargetListSampler([0.0, 0.2, 0.4, 2.0])
    assert [t for t in [0.0, 1.0, 1.5, 2.0] if s.offer(t)] == [0.0, 1.0, 2.0]
    assert s.next_target_s() is None


def test_scene_sampler_intervals_and_threshold() -> None:
    s = SceneSampler(threshold=0.2, min_interval_s=1.0, max_interval_s=5.0)
    grey = np.full((4, 4), 100, np.uint8)
    white = np.full((4, 4), 250, np.uint8)
    assert s.offer(0.0, grey)
    assert not s.needs_thumbnail(0.5) and not s.offer(0.5, white)  # too soon
    assert not s.offer(1.5, grey)  # no change
    assert s.offer(2.0, white)  # changed
    assert not s.offer(6.0, white)
    assert s.offer(7.0, white)  # max interval forces one
    assert scene_score(grey, white) == pytest.approx(150 / 255)
    assert scene_score(grey, np.zeros((2, 2), np.uint8)) == 1.0


def test_policy_validation() -> None:
    assert SamplingPolicy().mode is SamplingMode.FIXED_RATE and SamplingPolicy().fps == 1.0
    for bad in (
        lambda: SamplingPolicy.fixed_rate(0),
        lambda: SamplingPolicy.fixed_rate(float("nan")),
        lambda: SamplingPolicy.uniform(0),
        lambda: SamplingPolicy.scene(2.0),
        lambda: SamplingPolicy.scene(0.1, 5.0, 1.0),
    ):
        with pytest.raises(ValueError):
            bad()
    assert SamplingPolicy.uniform(8).describe() == "8 frames uniformly"
