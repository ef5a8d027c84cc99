"""Write a :class:`~streamer.demo.scene.Recording` into a media file with PyAV (atomically).

The container and codecs are the recording's own (MP4/H.264+AAC, MKV/H.264+Opus, WebM/VP8+Opus,
AVI/MPEG-4+MP3, MOV/H.264+PCM), all of which :func:`streamer.media.open_media` reads.
"""

from __future__ import annotations

import fractions
import os
from pathlib import Path

import numpy as np

from streamer.demo.scene import Recording, render_audio, render_yuv420

__all__ = ["write_recording"]

_VIDEO_OPTIONS = {
    "libx264": {"preset": "ultrafast", "crf": "20"},
    "libvpx": {"deadline": "realtime", "cpu-used": "8", "b": "1M", "crf": "10"},
    "mpeg4": {"qscale": "3"},
}


def write_recording(rec: Recording, path: str | os.PathLike[str]) -> Path:
    """Encode ``rec`` into ``path`` (its suffix should be ``rec.suffix``); the file appears complete."""
    import av

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part{rec.suffix}")  # concurrent writers never collide
    container = av.open(str(tmp), "w", format={"mkv": "matroska"}.get(rec.container, rec.container))
    try:
        video = container.add_stream(rec.video_codec, rate=rec.fps, options=_VIDEO_OPTIONS[rec.video_codec])
        assert isinstance(video, av.video.stream.VideoStream)
        video.width, video.height, video.pix_fmt = rec.width, rec.height, "yuv420p"
        video.codec_context.time_base = fractions.Fraction(1, rec.fps)
        audio = container.add_stream(rec.audio_codec, rate=rec.sample_rate)
        assert isinstance(audio, av.audio.stream.AudioStream)
        audio.layout = "stereo" if rec.channels == 2 else "mono"
        for i in range(rec.num_frames):
            frame = av.VideoFrame.from_ndarray(render_yuv420(rec, i / rec.fps), format="yuv420p")
            frame.pts = i
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        _write_audio(av, container, audio, rec)
    finally:
        container.close()
    tmp.replace(out)
    return out


def _write_audio(av, container, stream, rec: Recording) -> None:  # noqa: ANN001 - PyAV objects
    samples = render_audio(rec)
    planes = np.repeat(samples[None], rec.channels, axis=0)
    layout = stream.layout.name
    fmt = stream.codec_context.format.name if stream.codec_context.format else "fltp"
    resampler = av.AudioResampler(format=fmt, layout=layout, rate=rec.sample_rate)
    size = stream.codec_context.frame_size or 1024
    for pos in range(0, samples.size, size):
        chunk = np.ascontiguousarray(planes[:, pos : pos + size])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate, frame.pts = rec.sample_rate, pos
        frame.time_base = fractions.Fraction(1, rec.sample_rate)
        for converted in resampler.resample(frame):
            for packet in stream.encode(converted):
                container.mux(packet)
    for converted in resampler.resample(None):
        for packet in stream.encode(converted):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
