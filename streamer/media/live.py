"""Live sources: PCM chunks and pictures pushed by an endpoint, as timestamped model inputs.

Sans-I/O: the endpoint hands bytes (and optionally the client's timestamps) to ``push`` and
gets :class:`AudioFrames` / :class:`VideoFrame` back; nothing here touches sockets or threads.
Times are seconds on the session's clock: the client's ``t_s`` when given, otherwise arrival
time from ``clock`` (``time.monotonic`` by default) relative to the source's creation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from streamer.errors import InputError
from streamer.media.framing import DEFAULT_BLOCK_FRAMES, AudioFramer
from streamer.media.image import decode_image, rgb_from_bytes
from streamer.media.policy import FrameSampler, SamplingMode, SamplingPolicy, make_sampler
from streamer.media.resample import MonoResampler, pcm_to_mono
from streamer.media.types import SAMPLE_RATE, AudioFrames, MediaLimits, VideoFrame

__all__ = ["PcmResampler", "LiveVideo"]

_GAP_TOLERANCE_S = 0.2  # client timestamps may jitter this much before a gap is filled


class PcmResampler:
    """PCM chunks (s16le / f32le, any rate, mono or interleaved multi-channel) → 16 kHz 40 ms frames.

    The resampler and the partial frame carry over between pushes, so chunk boundaries cost no
    clicks and no drift: the output times follow the sample clock from the first chunk. With
    client timestamps, a chunk that starts later than the sample clock by more than 0.2 s is a
    gap and is preceded by silence (at most ``limits.max_gap_fill_s``, then the clock jumps);
    a chunk that starts earlier than already-emitted audio is refused (InputError).

    Call :meth:`push` per chunk, :meth:`flush` once at the end (returns the padded tail).
    """

    def __init__(
        self,
        limits: MediaLimits | None = None,
        block_frames: int = DEFAULT_BLOCK_FRAMES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits or MediaLimits()
        self._block_frames = block_frames
        self._framer = AudioFramer(block_frames)
        self._resampler = MonoResampler()
        self._clock = clock
        self._epoch = clock()
        self._rate: int | None = None

    @property
    def next_t_s(self) -> float | None:
        """Session time of the next output sample; None before the first push."""
        return self._framer.next_sample_s

    def push(
        self, data: bytes, fmt: str, sample_rate: int, channels: int = 1, t_s: float | None = None
    ) -> list[AudioFrames]:
        """Add one chunk; return every complete 40 ms frame now available (possibly none)."""
        lim = self.limits
        if len(data) > lim.max_chunk_bytes:
            raise InputError(f"PCM chunk of {len(data)} bytes is over the limit of {lim.max_chunk_bytes}")
        if not lim.min_sample_rate <= sample_rate <= lim.max_sample_rate:
            raise InputError(
                f"sample rate {sample_rate} Hz is outside {lim.min_sample_rate}-{lim.max_sample_rate} Hz"
            )
        if not 1 <= channels <= lim.max_channels:
            raise InputError(f"channels must be in 1-{lim.max_channels}, got {channels}")
        if t_s is not None and not math.isfinite(t_s):
            raise InputError(f"timestamp must be finite, got {t_s}")
        mono = pcm_to_mono(data, fmt, channels)
        out: list[AudioFrames] = []
        if not self._framer.started:
            start = t_s if t_s is not None else self._clock() - self._epoch
            self._framer.start(max(0.0, start))
        elif t_s is not None:
            out += self._follow_client_clock(t_s)
        if self._rate is not None and sample_rate != self._rate:
            out += self._framer.push(self._resampler.flush(), eager=True)
        self._rate = sample_rate
        out += self._framer.push(self._resampler.push(mono, sample_rate), eager=True)
        return out

    def _follow_client_clock(self, t_s: float) -> list[AudioFrames]:
        expected = self._framer.next_sample_s
        assert expected is not None
        gap = t_s - expected
        if gap < -_GAP_TOLERANCE_S - self._held_s():
            raise InputError(
                f"audio chunk at {t_s:.3f} s overlaps audio already received up to {expected:.3f} s"
            )
        if gap <= _GAP_TOLERANCE_S:
            return []
        out = self._framer.push(self._resampler.flush(), eager=True)
        fill = min(t_s - (self._framer.next_sample_s or t_s), self.limits.max_gap_fill_s)
        if fill > 0:
            out += self._framer.push_silence(round(fill * SAMPLE_RATE), eager=True)
        return out

    def _held_s(self) -> float:
        return 0.05  # samples held inside the resampler's filter, at most a few ms; generous bound

    def flush(self) -> list[AudioFrames]:
        """End of stream: drain the resampler and return the last frames, the final one padded."""
        out = self._framer.push(self._resampler.flush(), eager=True)
        out += self._framer.flush()
        return out


class LiveVideo:
    """Pictures pushed one at a time (JPEG/PNG/WebP bytes or raw RGB) → sampled :class:`VideoFrame`.

    The sampling policy (fixed rate or scene change; not MAX_FRAMES, which needs the whole
    video) decides from the timestamp, before decoding, whether a picture is wanted, so a client
    sending 30 fps to a 1 fps session costs one decode per second. Timestamps must not decrease.
    """

    def __init__(
        self,
        policy: SamplingPolicy | None = None,
        limits: MediaLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        policy = policy or SamplingPolicy()
        if policy.mode is SamplingMode.MAX_FRAMES:
            raise InputError(
                "a live source cannot sample a maximum count uniformly; use a rate or scene policy"
            )
        self.policy = policy
        self.limits = limits or MediaLimits()
        self._sampler: FrameSampler = make_sampler(policy)
        self._clock = clock
        self._epoch = clock()
        self._last_t: float | None = None

    def _time(self, t_s: float | None) -> float:
        t = t_s if t_s is not None else self._clock() - self._epoch
        if not math.isfinite(t) or t < 0:
            raise InputError(f"timestamp must be finite and >= 0, got {t}")
        if self._last_t is not None and t < self._last_t:
            raise InputError(f"frame timestamp {t:.3f} s is before the previous one ({self._last_t:.3f} s)")
        self._last_t = t
        return t

    def _wanted(self, t: float) -> bool:
        target = self._sampler.next_target_s()
        return target is not None and (t >= target - 1e-3 or self._sampler.needs_thumbnail(t))

    def _offer(self, t: float, image: np.ndarray) -> VideoFrame | None:
        thumb = None
        if self._sampler.needs_thumbnail(t):
            step = max(1, image.shape[1] // 64)
            small = image[::step, ::step].astype(np.uint16)
            thumb = ((small[..., 0] * 77 + small[..., 1] * 150 + small[..., 2] * 29) >> 8).astype(np.uint8)
        return VideoFrame(t_s=t, image=image) if self._sampler.offer(t, thumb) else None

    def push_image(self, data: bytes, t_s: float | None = None) -> VideoFrame | None:
        """An encoded picture; returns the frame if the policy takes it, else None (not decoded)."""
        t = self._time(t_s)
        if not self._wanted(t):
            return None
        return self._offer(t, decode_image(data, self.limits))

    def push_rgb(self, data: bytes, width: int, height: int, t_s: float | None = None) -> VideoFrame | None:
        """A raw packed RGB24 picture; returns the frame if the policy takes it, else None."""
        t = self._time(t_s)
        if not self._wanted(t):
            return None
        return self._offer(t, rgb_from_bytes(data, width, height, self.limits))
