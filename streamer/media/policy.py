"""Which video frames the model sees: sampling policies and their Sans-I/O samplers.

A :class:`SamplingPolicy` is plain configuration. :func:`make_sampler` turns it into a
:class:`FrameSampler`, a small state machine the decoders drive frame by frame::

    sampler = make_sampler(policy, duration_s=..., num_frames=..., fps=...)
    while (target := sampler.next_target_s()) is not None:   # earliest useful time
        ... decode (or seek to) a frame at time t ...
        if sampler.needs_thumbnail(t):                        # scene policy only
            thumb = luma_thumbnail(...)
        if sampler.offer(t, thumb):                           # True: convert and emit it
            ...

Samplers never see pixels except a small luma thumbnail, so the decoders convert to RGB
only the frames that are actually taken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

__all__ = [
    "SamplingMode",
    "SamplingPolicy",
    "FrameSampler",
    "FixedRateSampler",
    "TargetListSampler",
    "SceneSampler",
    "make_sampler",
    "uniform_frame_indices",
    "scene_score",
]

# A frame within this many seconds before a target still counts as being at the target
# (container time bases round presentation times by up to one tick).
_TOLERANCE_S = 1e-3


class SamplingMode(str, Enum):
    FIXED_RATE = "fps"  # one frame every 1/fps seconds
    MAX_FRAMES = "frames"  # at most N frames spread uniformly over the file (reference processor)
    SCENE = "scene"  # a frame when the picture changes enough, within [min, max] interval


@dataclass(frozen=True)
class SamplingPolicy:
    """How to pick frames from a video. Build with the class methods; default is 1 fps."""

    mode: SamplingMode = SamplingMode.FIXED_RATE
    fps: float = 1.0  # frames per second (FIXED_RATE)
    max_frames: int = 32  # frames over the whole file (MAX_FRAMES), as the reference's num_frames
    scene_threshold: float = 0.1  # mean absolute luma change in [0, 1] that starts a new frame (SCENE)
    min_interval_s: float = 0.5  # seconds: never two frames closer than this (SCENE)
    max_interval_s: float = 10.0  # seconds: always a frame at least this often (SCENE)

    def __post_init__(self) -> None:
        if not isinstance(self.mode, SamplingMode):
            object.__setattr__(self, "mode", SamplingMode(self.mode))
        if not (math.isfinite(self.fps) and 0 < self.fps <= 1000):
            raise ValueError(f"fps must be in (0, 1000], got {self.fps}")
        if self.max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {self.max_frames}")
        if not 0.0 <= self.scene_threshold <= 1.0:
            raise ValueError(f"scene_threshold must be in [0, 1], got {self.scene_threshold}")
        if not 0.0 <= self.min_interval_s <= self.max_interval_s:
            raise ValueError("need 0 <= min_interval_s <= max_interval_s")

    @classmethod
    def fixed_rate(cls, fps: float = 1.0) -> SamplingPolicy:
        """One frame every ``1 / fps`` seconds (the first frame at or after each tick)."""
        return cls(mode=SamplingMode.FIXED_RATE, fps=fps)

    @classmethod
    def uniform(cls, max_frames: int = 32) -> SamplingPolicy:
        """At most ``max_frames`` frames spread uniformly, picking the reference processor's indices."""
        return cls(mode=SamplingMode.MAX_FRAMES, max_frames=max_frames)

    @classmethod
    def scene(
        cls, threshold: float = 0.1, min_interval_s: float = 0.5, max_interval_s: float = 10.0
    ) -> SamplingPolicy:
        """A new frame when the picture changes by ``threshold`` (mean |Δluma| / 255) since the last one."""
        return cls(
            mode=SamplingMode.SCENE,
            scene_threshold=threshold,
            min_interval_s=min_interval_s,
            max_interval_s=max_interval_s,
        )

    def describe(self) -> str:
        """A short human-readable form, e.g. ``"1 fps"``."""
        if self.mode is SamplingMode.FIXED_RATE:
            return f"{self.fps:g} fps"
        if self.mode is SamplingMode.MAX_FRAMES:
            return f"{self.max_frames} frames uniformly"
        return f"scene change >= {self.scene_threshold:g} every {self.min_interval_s:g}-{self.max_interval_s:g} s"


def uniform_frame_indices(total_frames: int, num_frames: int) -> np.ndarray:
    """Frame indices the reference video processor samples: ``arange(n) * total // n``.

    Unlike the reference, asking for more frames than exist returns every frame instead of raising.
    """
    if total_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    n = min(num_frames, total_frames)
    return np.arange(n, dtype=np.int64) * total_frames // n


def scene_score(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two uint8 luma thumbnails, in [0, 1]; 1.0 if shapes differ."""
    if a.shape != b.shape:
        return 1.0
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()) / 255.0


class FrameSampler:
    """Interface of the samplers: decide from timestamps (and thumbnails) which frames to take."""

    def next_target_s(self) -> float | None:
        """Earliest time a frame could be taken next; None once the sampler wants nothing more."""
        raise NotImplementedError

    def needs_thumbnail(self, t_s: float) -> bool:
        """Whether :meth:`offer` needs a luma thumbnail for a frame at ``t_s``."""
        return False

    def offer(self, t_s: float, thumbnail: np.ndarray | None = None) -> bool:
        """Offer the frame presented at ``t_s``; True means: take it. Times must not decrease."""
        raise NotImplementedError


class FixedRateSampler(FrameSampler):
    """Takes the first frame at or after each tick ``k / fps``; ticks with no frame are skipped."""

    def __init__(self, fps: float, end_s: float | None = None) -> None:
        self._period_s = 1.0 / fps
        self._tick = 0
        self._end_s = end_s

    def next_target_s(self) -> float | None:
        t = self._tick * self._period_s
        if self._end_s is not None and t > self._end_s:
            return None
        return t

    def offer(self, t_s: float, thumbnail: np.ndarray | None = None) -> bool:
        if t_s < self._tick * self._period_s - _TOLERANCE_S:
            return False
        # next tick strictly after this frame
        self._tick = max(self._tick, math.floor((t_s + _TOLERANCE_S) / self._period_s)) + 1
        return True


class TargetListSampler(FrameSampler):
    """Takes the first frame at or after each of a sorted list of target times."""

    def __init__(self, targets_s: list[float]) -> None:
        self._targets = sorted(targets_s)
        self._i = 0

    def next_target_s(self) -> float | None:
        return self._targets[self._i] if self._i < len(self._targets) else None

    def offer(self, t_s: float, thumbnail: np.ndarray | None = None) -> bool:
        if self._i >= len(self._targets) or t_s < self._targets[self._i] - _TOLERANCE_S:
            return False
        while self._i < len(self._targets) and self._targets[self._i] - _TOLERANCE_S <= t_s:
            self._i += 1
        return True


class SceneSampler(FrameSampler):
    """Takes a frame when its thumbnail differs from the last taken one by ``threshold``.

    Never two frames closer than ``min_interval_s``; always one after ``max_interval_s``.
    """

    def __init__(self, threshold: float, min_interval_s: float, max_interval_s: float) -> None:
        self._threshold = threshold
        self._min_s = min_interval_s
        self._max_s = max_interval_s
        self._last_t: float | None = None
        self._last_thumb: np.ndarray | None = None

    def next_target_s(self) -> float | None:
        return 0.0 if self._last_t is None else self._last_t + self._min_s

    def needs_thumbnail(self, t_s: float) -> bool:
        if self._last_t is None:
            return True
        dt = t_s - self._last_t
        return dt >= self._min_s - _TOLERANCE_S

    def offer(self, t_s: float, thumbnail: np.ndarray | None = None) -> bool:
        take = False
        if self._last_t is None:
            take = True
        else:
            dt = t_s - self._last_t
            if dt < self._min_s - _TOLERANCE_S:
                return False
            if dt >= self._max_s - _TOLERANCE_S:
                take = True
            elif thumbnail is not None and self._last_thumb is not None:
                take = scene_score(thumbnail, self._last_thumb) >= self._threshold
            else:
                take = thumbnail is not None  # first thumbnail after a thumbnail-less start
        if take:
            self._last_t = t_s
            if thumbnail is not None:
                self._last_thumb = thumbnail
        return take


def make_sampler(
    policy: SamplingPolicy,
    *,
    duration_s: float | None = None,
    num_frames: int | None = None,
    fps: float | None = None,
) -> FrameSampler:
    """The sampler for ``policy`` over a video of the given metadata.

    MAX_FRAMES needs ``num_frames`` and ``fps`` (or ``duration_s``): it takes the reference's
    frame indices ``arange(n) * total // n`` and targets their times ``index / fps``, which is
    the frame itself for constant-rate video and the same instants for variable-rate video.
    """
    if policy.mode is SamplingMode.FIXED_RATE:
        return FixedRateSampler(policy.fps)  # runs to the end of the stream, whatever the header claims
    if policy.mode is SamplingMode.SCENE:
        return SceneSampler(policy.scene_threshold, policy.min_interval_s, policy.max_interval_s)
    if num_frames is None or num_frames <= 0:
        if duration_s is None or fps is None:
            return TargetListSampler([0.0])
        num_frames = max(1, round(duration_s * fps))
    if fps is None or fps <= 0:
        fps = num_frames / duration_s if duration_s else 1.0
    indices = uniform_frame_indices(num_frames, policy.max_frames)
    return TargetListSampler([float(i) / fps for i in indices])
