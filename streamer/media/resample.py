"""Down-mix to mono and resample to 16 kHz, statefully, across chunks of any size.

Down-mixing is the plain channel mean (what ``librosa.load(mono=True)`` and transformers'
``load_audio`` do), done in numpy; resampling uses libswresample through PyAV, which keeps its
filter state between calls, so chunk boundaries add no clicks and sample counts do not drift.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from streamer.errors import InputError, MediaError
from streamer.media.types import SAMPLE_RATE

if TYPE_CHECKING:  # PyAV is imported where it is used; its types are for the checker only
    from av.audio.frame import AudioFrame
    from av.audio.resampler import AudioResampler

__all__ = ["MonoResampler", "frame_to_mono", "pcm_to_mono", "PCM_FORMATS"]

PCM_FORMATS = ("s16le", "f32le")  # live PCM sample formats accepted

# PyAV sample format name (packed form) -> scale to [-1, 1)
_INT_SCALE = {"u8": 1 / 128.0, "s16": 1 / 32768.0, "s32": 1 / 2147483648.0, "s64": 1 / 9.223372036854776e18}


def frame_to_mono(frame: AudioFrame) -> np.ndarray:
    """A decoded ``av.AudioFrame`` (any sample format, any layout) as float32 mono [samples]."""
    fmt = frame.format
    channels = max(1, len(frame.layout.channels))
    data = frame.to_ndarray()  # planar: [C, N]; packed: [1, N*C]
    if not fmt.is_planar:
        data = data.reshape(-1, channels).T
    name = fmt.name.rstrip("p")
    if name == "u8":
        x = (data.astype(np.float32) - 128.0) * _INT_SCALE["u8"]
    elif name in _INT_SCALE:
        x = data.astype(np.float32) * np.float32(_INT_SCALE[name])
    else:
        x = data.astype(np.float32, copy=False)
    mono = x[0] if x.shape[0] == 1 else x.mean(axis=0, dtype=np.float32)
    return np.nan_to_num(mono, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)


def pcm_to_mono(data: bytes, fmt: str, channels: int) -> np.ndarray:
    """Little-endian interleaved PCM bytes (``s16le`` or ``f32le``) as float32 mono [samples].

    Raises InputError for an unknown format or a byte count that is not whole sample frames.
    """
    if fmt not in PCM_FORMATS:
        raise InputError(f"PCM format must be one of {PCM_FORMATS}, got {fmt!r}")
    width = 2 if fmt == "s16le" else 4
    if channels < 1:
        raise InputError(f"channels must be >= 1, got {channels}")
    if len(data) % (width * channels):
        raise InputError(
            f"PCM chunk of {len(data)} bytes is not a whole number of {channels}-channel {fmt} frames"
        )
    if fmt == "s16le":
        x = np.frombuffer(data, dtype="<i2").astype(np.float32) * np.float32(1 / 32768.0)
    else:
        x = np.frombuffer(data, dtype="<f4").astype(np.float32)
        x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return x


class MonoResampler:
    """float32 mono at any rate in, float32 mono at 16 kHz out; stateful across calls.

    Call :meth:`push` per chunk and :meth:`flush` at the end of the stream (it returns the
    samples still held in the filter). A change of input rate flushes and starts over.
    16 kHz input passes through untouched.
    """

    def __init__(self) -> None:
        self._rate: int | None = None
        self._resampler: AudioResampler | None = None
        self._pts = 0

    def push(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """Resample one chunk; may return fewer (or more) samples than rate ratio implies."""
        samples = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
        out: list[np.ndarray] = []
        if sample_rate != self._rate:
            out.append(self.flush())
            self._rate = sample_rate
            self._resampler = None
            self._pts = 0
            if sample_rate != SAMPLE_RATE:
                import av

                self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        if samples.size == 0:
            return _concat(out)
        if self._resampler is None:
            out.append(samples.copy())
            return _concat(out)
        import av

        frame = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = self._pts
        self._pts += samples.size
        try:
            for f in self._resampler.resample(frame):
                out.append(f.to_ndarray().reshape(-1))
        except av.FFmpegError as exc:
            raise MediaError(f"cannot resample audio from {sample_rate} Hz: {exc}") from exc
        return _concat(out)

    def flush(self) -> np.ndarray:
        """Drain the filter at the end of a stream; the resampler can be reused afterwards."""
        if self._resampler is None:
            return np.zeros(0, dtype=np.float32)
        import av

        out = []
        try:
            for f in self._resampler.resample(None):
                out.append(f.to_ndarray().reshape(-1))
        except av.FFmpegError as exc:
            raise MediaError(f"cannot resample audio: {exc}") from exc
        self._resampler = None
        self._rate = None
        return _concat(out)


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    parts = [p for p in parts if p.size]
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
