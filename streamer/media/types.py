"""Plain data that crosses the media boundary: frames, audio blocks, stream metadata, limits.

Everything here is numpy + dataclasses; nothing imports av or torch. Times are seconds from
the start of the media (the container's start time for files, the session's first item for
live sources).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "SAMPLE_RATE",
    "FRAME_SAMPLES",
    "FRAME_S",
    "VideoFrame",
    "AudioFrames",
    "VideoStreamInfo",
    "AudioStreamInfo",
    "MediaInfo",
    "MediaLimits",
]

SAMPLE_RATE = 16_000  # Hz, the model's audio rate
FRAME_SAMPLES = 640  # samples per audio token (40 ms at 16 kHz)
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE  # seconds per audio token (0.04)


@dataclass(frozen=True)
class VideoFrame:
    """One sampled picture."""

    t_s: float  # presentation time, seconds from the media start
    image: np.ndarray  # uint8 [H, W, 3] RGB


@dataclass(frozen=True)
class AudioFrames:
    """A block of consecutive 40 ms audio frames (16 kHz mono float32).

    Only the last block of a stream can be padded: its final frame is zero-filled after
    ``num_valid_samples`` samples, exactly as the reference feature extractor pads.
    """

    t_s: float  # time of the first sample, seconds from the media start
    frames: np.ndarray  # float32 [N, 640], row i starts at t_s + i * 0.04
    num_valid_samples: int  # samples of real audio in the block (N * 640 unless padded)

    @property
    def num_frames(self) -> int:
        """Number of 640-sample frames (= audio tokens) in the block."""
        return int(self.frames.shape[0])

    @property
    def end_s(self) -> float:
        """Time just after the last valid sample, seconds from the media start."""
        return self.t_s + self.num_valid_samples / SAMPLE_RATE

    def waveform(self) -> np.ndarray:
        """The valid samples as one float32 [num_valid_samples] array (a view, no copy)."""
        return self.frames.reshape(-1)[: self.num_valid_samples]


@dataclass(frozen=True)
class VideoStreamInfo:
    """What the container says about the video stream that will be decoded."""

    codec: str  # decoder name, e.g. "h264"
    width: int  # pixels
    height: int  # pixels
    fps: float | None  # average frames per second; None when the container does not say
    num_frames: int | None  # frame count from the container or estimated from duration; None if unknown
    duration_s: float | None  # seconds; None when unknown


@dataclass(frozen=True)
class AudioStreamInfo:
    """What the container says about the audio stream that will be decoded."""

    codec: str  # decoder name, e.g. "aac"
    sample_rate: int  # Hz, of the stream (decoded audio is resampled to 16 kHz)
    channels: int  # channels in the stream (decoded audio is down-mixed to mono)
    duration_s: float | None  # seconds; None when unknown


@dataclass(frozen=True)
class MediaInfo:
    """Probe metadata of a media file."""

    path: str  # the file as given
    container: str  # demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    duration_s: float | None  # seconds, from the container (longest stream); None if unknown
    start_s: float  # container start time in seconds; every timestamp is relative to it
    video: VideoStreamInfo | None  # None when there is no usable video stream
    audio: AudioStreamInfo | None  # None when there is no usable audio stream
    size_bytes: int  # file size in bytes


@dataclass(frozen=True)
class MediaLimits:
    """What streamer accepts; anything outside is refused (or the stream dropped, with a warning).

    Defaults admit every real recording (8K video, 384 kHz audio, a day of media) while keeping
    decoding of hostile files bounded.
    """

    max_width: int = 8192  # pixels
    max_height: int = 8192  # pixels
    max_pixels: int = 8192 * 4608  # width * height, pixels (~38 Mpx, 8K 16:9 plus margin)
    max_sample_rate: int = 384_000  # Hz
    min_sample_rate: int = 1_000  # Hz
    max_channels: int = 64  # audio channels
    max_duration_s: float = 24 * 3600.0  # seconds of media in one file
    max_file_bytes: int = 64 * 2**30  # bytes on disk
    max_image_bytes: int = 32 * 2**20  # bytes of one encoded live image
    max_chunk_bytes: int = 16 * 2**20  # bytes of one live PCM chunk
    max_gap_fill_s: float = 10.0  # seconds of silence inserted for one timestamp gap in audio
    max_bad_packets: int = 10_000  # damaged packets skipped before a stream is abandoned
    max_warnings: int = 100  # distinct warnings kept per source

    def __post_init__(self) -> None:
        for name in ("max_width", "max_height", "max_pixels", "max_sample_rate", "max_channels"):
            if getattr(self, name) <= 0:
                raise ValueError(f"MediaLimits.{name} must be positive")
