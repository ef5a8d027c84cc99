"""Media decoders: containers and live chunks → timestamped frames and 40 ms audio (no torch).

Files (:func:`open_media`) stream sparse-sampled RGB frames (:class:`VideoFrame`) and 16 kHz
mono audio in 640-sample frames (:class:`AudioFrames`), merged by timestamp. Live endpoints
push pictures to :class:`LiveVideo` (or call :func:`decode_image`) and PCM chunks to
:class:`PcmResampler`. Everything raised is a :class:`streamer.errors.MediaError`,
:class:`~streamer.errors.UnsupportedMediaError` or :class:`~streamer.errors.InputError`.
"""

from streamer.media.container import ALLOWED_DEMUXERS
from streamer.media.framing import AudioFramer
from streamer.media.image import decode_image, encode_png, image_format, image_size, rgb_from_bytes
from streamer.media.live import LiveVideo, PcmResampler
from streamer.media.policy import SamplingMode, SamplingPolicy, make_sampler, uniform_frame_indices
from streamer.media.resample import MonoResampler
from streamer.media.source import MediaSource, open_media
from streamer.media.types import (
    FRAME_S,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    AudioFrames,
    AudioStreamInfo,
    MediaInfo,
    MediaLimits,
    VideoFrame,
    VideoStreamInfo,
)
from streamer.media.video import DecodeOptions

__all__ = [
    "ALLOWED_DEMUXERS",
    "FRAME_S",
    "FRAME_SAMPLES",
    "SAMPLE_RATE",
    "AudioFramer",
    "AudioFrames",
    "AudioStreamInfo",
    "DecodeOptions",
    "LiveVideo",
    "MediaInfo",
    "MediaLimits",
    "MediaSource",
    "MonoResampler",
    "PcmResampler",
    "SamplingMode",
    "SamplingPolicy",
    "VideoFrame",
    "VideoStreamInfo",
    "decode_image",
    "encode_png",
    "image_format",
    "image_size",
    "make_sampler",
    "open_media",
    "rgb_from_bytes",
    "uniform_frame_indices",
]
