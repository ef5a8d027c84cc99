"""Sans-I/O session input: what each push becomes, in the order the model must see it.

A :class:`Timeline` takes pictures and audio with their timestamps and returns queue items in
timeline order: a frame waits (at most ``max_held_frames``) until the audio before it has
arrived, so the sequence interleaves them as they happened; it does not wait while there is no
audio: before the first, and, given ``audio_stall_s``, once none has been pushed for that long
(the audio stopped; :meth:`Timeline.release_stalled` lets a periodic caller release what was
held, so a stream's last frames do not wait for a question); audio is cut into segments by
:class:`streamer.media.framing.AudioFramer`. No threads, no clock of its own (it is injected),
no model: the engine's sessions and the fine-tuning data builder both use it, so what is
trained is what is served.

Every method validates its input before touching state; :meth:`Timeline.clone` lets a caller
try a push and keep the result only if the queue accepts it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from streamer.engine.protocol import MAX_TIMESTAMP_S, SamplingParams
from streamer.errors import InputError
from streamer.media.framing import AudioFramer
from streamer.media.types import FRAME_S, FRAME_SAMPLES, SAMPLE_RATE

if TYPE_CHECKING:
    from streamer.engine.collector import AnswerStream

__all__ = ["FrameItem", "AudioItem", "TextItem", "QuestionItem", "Item", "Timeline", "ROLES"]

ROLES = ("system", "user", "assistant")
_JITTER_S = 0.05  # audio this close to the expected time continues the running segment
MAX_FRAME_PIXELS = 8192 * 8192  # bigger pictures are refused (the model sees <= 1120 soft tokens)


@dataclass
class FrameItem:
    t_s: float  # seconds from the session start
    image: np.ndarray  # uint8 [H, W, 3], kept compact until the engine preprocesses it
    seq: int | None = None  # client sequence number

    @property
    def nbytes(self) -> int:
        return int(self.image.nbytes)


@dataclass
class AudioItem:
    t_s: float  # time of the first sample, seconds
    frames: np.ndarray  # float32 [N, 640]
    seq: int | None = None

    @property
    def nbytes(self) -> int:
        return int(self.frames.nbytes)


@dataclass
class TextItem:
    text: str
    role: str = "user"
    seq: int | None = None

    @property
    def nbytes(self) -> int:
        return len(self.text.encode("utf-8"))


@dataclass
class QuestionItem:
    text: str
    params: SamplingParams
    stream: AnswerStream | None = None  # where the answer goes (None in offline layouts)
    seq: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return len(self.text.encode("utf-8"))


Item = FrameItem | AudioItem | TextItem | QuestionItem


def check_timestamp(t_s: float | None, default: float, what: str) -> float:
    t = default if t_s is None else t_s
    if isinstance(t, bool) or not isinstance(t, (int, float, np.floating, np.integer)):
        raise InputError(f"{what} timestamp must be a number of seconds, got {t_s!r}")
    t = float(t)
    if not (math.isfinite(t) and 0 <= t <= MAX_TIMESTAMP_S):
        raise InputError(f"{what} timestamp must be in [0, {MAX_TIMESTAMP_S:g}] seconds, got {t_s!r}")
    return t


def check_frame(image: object) -> np.ndarray:
    """``image`` as uint8 ``[H, W, 3]`` of a sane size, or InputError."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise InputError(f"a frame must be uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
    if image.shape[0] * image.shape[1] > MAX_FRAME_PIXELS:
        raise InputError(f"a frame of {image.shape[1]}x{image.shape[0]} pixels is too large")
    return image


def check_audio(samples: object) -> np.ndarray:
    """``samples`` as a non-empty finite float32 1-D array, or InputError."""
    samples = np.asarray(samples)
    if samples.ndim != 1 or samples.size == 0 or samples.dtype.kind not in "fiu":
        raise InputError(
            f"audio must be a non-empty 1-D array of 16 kHz samples, got {samples.dtype} {list(samples.shape)}"
        )
    samples = samples.astype(np.float32, copy=False)
    if not np.isfinite(samples).all():
        raise InputError("audio contains NaN or infinite samples")
    return samples


class Timeline:
    """Orders one session's frames and audio; returns items ready to queue."""

    def __init__(
        self,
        audio_segment_s: float = 1.0,
        max_held_frames: int = 4,
        clock: Callable[[], float] = lambda: 0.0,
        audio_stall_s: float | None = None,
    ):
        self.block_frames = max(1, round(audio_segment_s / FRAME_S))
        self.max_held_frames = max_held_frames
        self.clock = clock  # seconds since the session start, for pushes without a timestamp
        # seconds of clock without an audio push after which the audio counts as stopped (None: never,
        # as in offline layouts, where all input is known)
        self.audio_stall_s = audio_stall_s
        self.audio_pushed_at = -math.inf  # clock of the last audio push
        self.last_frame_t = -math.inf
        self.framer: AudioFramer | None = None  # None until the first audio
        self.held: list[FrameItem] = []

    # ---- state ---------------------------------------------------------------------------------
    def clone(self) -> Timeline:
        """An independent copy (held frames are shared: items are never mutated)."""
        twin = copy.copy(self)
        twin.held = list(self.held)
        if self.framer is not None:
            twin.framer = self.framer.copy()
        return twin

    @property
    def audio_next_t(self) -> float | None:
        """Time of the next audio sample expected; None before any audio."""
        return None if self.framer is None else self.framer.next_sample_s

    @property
    def held_bytes(self) -> int:
        """Bytes held back: frames waiting for audio and the partial audio segment."""
        audio = self.framer.buffered_samples * 4 if self.framer is not None else 0
        return sum(f.nbytes for f in self.held) + audio

    def export(self) -> dict[str, float | None]:
        """The clock state of an idle timeline (nothing held), for snapshots."""
        if self.held or (self.framer is not None and self.framer.buffered_samples):
            raise InputError("a timeline with held frames or buffered audio cannot be exported")
        last = self.last_frame_t if math.isfinite(self.last_frame_t) else None
        return {"last_frame_t": last, "audio_next_t": self.audio_next_t}

    @classmethod
    def restore(
        cls,
        state: dict[str, float | None],
        audio_segment_s: float,
        max_held_frames: int,
        clock: Callable[[], float],
        audio_stall_s: float | None = None,
    ) -> Timeline:
        timeline = cls(audio_segment_s, max_held_frames, clock, audio_stall_s)
        last = state.get("last_frame_t")
        timeline.last_frame_t = -math.inf if last is None else float(last)
        audio = state.get("audio_next_t")
        if audio is not None:
            timeline._restart_audio(float(audio))
            timeline.audio_pushed_at = clock()  # the stall counts from the restore
        return timeline

    def _restart_audio(self, t_s: float) -> None:
        self.framer = AudioFramer(self.block_frames)
        self.framer.start(t_s)

    # ---- pushes --------------------------------------------------------------------------------
    def push_frame(self, image: object, t_s: float | None = None, seq: int | None = None) -> list[Item]:
        """A picture shown at ``t_s``; returns the items it releases (often none: it waits for audio)."""
        frame = check_frame(image)
        t = check_timestamp(t_s, self.clock(), "frame")
        if t < self.last_frame_t:
            raise InputError(f"out-of-order frame: {t:.3f}s after a frame at {self.last_frame_t:.3f}s")
        self.last_frame_t = t
        self.held.append(FrameItem(t, frame, seq))
        if not self._audio_flowing():
            return self._release(None)  # no audio to wait for
        if len(self.held) > self.max_held_frames:
            return self._release(self.held[0].t_s)
        return []

    def push_audio(self, samples: object, t_s: float | None = None, seq: int | None = None) -> list[Item]:
        """Mono 16 kHz samples starting at ``t_s`` (None: right after the previous audio)."""
        pcm = check_audio(samples)
        expected = self.audio_next_t
        t = check_timestamp(t_s, self.clock() if expected is None else expected, "audio")
        out: list[Item] = []
        if expected is None:
            self._restart_audio(t)
        elif t < expected - _JITTER_S:
            raise InputError(
                f"out-of-order audio: starts at {t:.3f}s, previous audio ends at {expected:.3f}s"
            )
        elif t > expected + _JITTER_S:
            out += self._flush_audio(seq)  # a gap: close the running segment, restart at the new time
            self._restart_audio(t)
        assert self.framer is not None
        self.audio_pushed_at = self.clock()
        return out + self._audio_items(self.framer.push(pcm), seq)

    def release_stalled(self) -> list[Item]:
        """The held frames if the audio has stopped (none pushed for ``audio_stall_s``), else none.

        For a periodic caller (the engine loop): without it, the frames pushed after the audio stopped
        would wait for the next frame, text or question."""
        return self._release(None) if self.audio_stopped else []

    @property
    def audio_stopped(self) -> bool:
        """Audio came, then none for ``audio_stall_s``: frames no longer wait for it."""
        stall = self.audio_stall_s
        return self.framer is not None and stall is not None and self.clock() - self.audio_pushed_at > stall

    def _audio_flowing(self) -> bool:
        """Audio has been pushed and has not stopped: frames wait for it."""
        return self.framer is not None and not self.audio_stopped

    def flush(self, seq: int | None = None) -> list[Item]:
        """Everything held, in order (before a text turn or a question)."""
        return self._flush_audio(seq) + self._release(None)

    def _flush_audio(self, seq: int | None) -> list[Item]:
        if self.framer is None:
            return []
        next_t = self.framer.next_sample_s
        items = self._audio_items(self.framer.flush(), seq)
        assert next_t is not None
        self._restart_audio(next_t)  # the padding of the tail frame does not shift later audio
        return items

    def _audio_items(self, blocks: list, seq: int | None) -> list[Item]:
        out: list[Item] = []
        for block in blocks:
            out += self._release(block.t_s)
            out.append(AudioItem(block.t_s, block.frames, seq))
        return out

    def _release(self, until: float | None) -> list[Item]:
        """Held frames shown at or before ``until`` (all when None), oldest first."""
        out: list[Item] = [f for f in self.held if until is None or f.t_s <= until]
        self.held = [f for f in self.held if not (until is None or f.t_s <= until)]
        return out


def samples_of(item: AudioItem) -> int:
    return int(item.frames.shape[0]) * FRAME_SAMPLES


def seconds_of(item: AudioItem) -> float:
    return samples_of(item) / SAMPLE_RATE
