"""Cut a 16 kHz mono waveform, arriving in pieces of any size, into 640-sample frames.

Sans-I/O and numpy only. The framing is the reference Gemma4Unified feature extractor's:
consecutive 640-sample rows, the last one zero-padded; the reference's ``input_features`` for
a waveform equal the concatenation of the blocks this produces for the same samples.
"""

from __future__ import annotations

import numpy as np

from streamer.media.types import FRAME_SAMPLES, SAMPLE_RATE, AudioFrames

__all__ = ["AudioFramer", "DEFAULT_BLOCK_FRAMES"]

DEFAULT_BLOCK_FRAMES = 25  # frames per yielded block: 1 s of audio


class AudioFramer:
    """Accumulates samples and hands out :class:`AudioFrames` blocks with exact timestamps.

    Call order: :meth:`push` any number of times, then :meth:`flush` once for the padded tail.
    The time of sample ``k`` is ``t0_s + k / 16000``, where ``t0_s`` is the first push's time;
    gaps are represented by pushing silence (:meth:`push_silence`), so timestamps never drift.
    """

    def __init__(self, block_frames: int = DEFAULT_BLOCK_FRAMES) -> None:
        if block_frames < 1:
            raise ValueError("block_frames must be >= 1")
        self.block_frames = block_frames
        self._block_samples = block_frames * FRAME_SAMPLES
        self._buf = np.zeros(self._block_samples, dtype=np.float32)
        self._fill = 0  # samples in _buf
        self._t0_s: float | None = None
        self._emitted = 0  # samples already handed out (whole frames)

    @property
    def started(self) -> bool:
        """Whether a first time has been set."""
        return self._t0_s is not None

    @property
    def next_sample_s(self) -> float | None:
        """Time of the next sample to be pushed; None before the first push."""
        if self._t0_s is None:
            return None
        return self._t0_s + (self._emitted + self._fill) / SAMPLE_RATE

    @property
    def samples_pushed(self) -> int:
        """Total samples pushed so far (silence included)."""
        return self._emitted + self._fill

    @property
    def buffered_samples(self) -> int:
        """Samples pushed but not yet handed out in a block."""
        return self._fill

    def copy(self) -> AudioFramer:
        """An independent copy (for trying a push and keeping it only if it is accepted)."""
        twin = AudioFramer(self.block_frames)
        twin._buf = self._buf.copy()
        twin._fill, twin._t0_s, twin._emitted = self._fill, self._t0_s, self._emitted
        return twin

    def start(self, t0_s: float) -> None:
        """Set the time of the first sample (only before anything is pushed)."""
        if self._t0_s is None:
            self._t0_s = float(t0_s)

    def push(self, samples: np.ndarray, eager: bool = False) -> list[AudioFrames]:
        """Append float32 16 kHz mono samples; return the complete blocks.

        With ``eager`` every complete 640-sample frame is returned at once (live use, low latency),
        in blocks of at most ``block_frames``; otherwise only full blocks are.
        """
        if self._t0_s is None:
            self._t0_s = 0.0
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        out: list[AudioFrames] = []
        pos = 0
        while pos < samples.size:
            n = min(samples.size - pos, self._block_samples - self._fill)
            self._buf[self._fill : self._fill + n] = samples[pos : pos + n]
            self._fill += n
            pos += n
            if self._fill == self._block_samples:
                out.append(self._emit(self._block_samples, padded_to=self._block_samples))
        if eager and self._fill >= FRAME_SAMPLES:
            whole = self._fill - self._fill % FRAME_SAMPLES
            out.append(self._emit(whole, padded_to=whole))
        return out

    def push_silence(self, num_samples: int, eager: bool = False) -> list[AudioFrames]:
        """Append ``num_samples`` zeros (a gap in the source), in bounded pieces."""
        out: list[AudioFrames] = []
        zeros = np.zeros(min(num_samples, self._block_samples), dtype=np.float32)
        left = num_samples
        while left > 0:
            n = min(left, zeros.size)
            out.extend(self.push(zeros[:n], eager=eager))
            left -= n
        return out

    def flush(self) -> list[AudioFrames]:
        """Return what is left, the last frame zero-padded to 640 samples (as the reference pads)."""
        if self._fill == 0:
            return []
        padded = -(-self._fill // FRAME_SAMPLES) * FRAME_SAMPLES
        return [self._emit(self._fill, padded_to=padded)]

    def _emit(self, valid: int, padded_to: int) -> AudioFrames:
        frames = np.zeros(padded_to, dtype=np.float32)
        frames[:valid] = self._buf[:valid]
        # keep what was not emitted (eager mode leaves a partial frame behind)
        rest = self._fill - valid
        if rest > 0:
            self._buf[:rest] = self._buf[valid : self._fill].copy()
        self._fill = rest
        assert self._t0_s is not None
        block = AudioFrames(
            t_s=self._t0_s + self._emitted / SAMPLE_RATE,
            frames=frames.reshape(-1, FRAME_SAMPLES),
            num_valid_samples=valid,
        )
        self._emitted += padded_to
        return block
