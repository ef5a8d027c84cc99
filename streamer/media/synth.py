"""Synthetic meeting recordings for demos and benchmarks (PyAV encode; no files in the repo).

The picture is a slide that changes every ``slide_s`` seconds, a moving speaker box and a
growing caption strip; the audio is a voice-like warbling tone with a little noise. Each slide
carries a distinct brightness pattern so frame sampling and scene detection have something to
find. Written atomically (``path`` appears only when complete).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["write_synthetic_recording"]


def write_synthetic_recording(
    path: str | os.PathLike[str],
    *,
    minutes: float = 2.0,
    size: tuple[int, int] = (1280, 720),
    fps: int = 25,
    sample_rate: int = 48_000,
    slide_s: float = 20.0,
    crf: int = 28,
) -> Path:
    """Encode an H.264 + AAC MP4 of ``minutes`` of synthetic meeting into ``path``."""
    import av

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    tmp = out.with_name(out.name + ".part")
    container = av.open(str(tmp), "w", format="mp4")
    video = container.add_stream(
        "libx264", rate=fps, options={"preset": "superfast", "crf": str(crf), "g": str(fps * 10)}
    )
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    audio = container.add_stream("aac", rate=sample_rate)
    audio.layout = "stereo"
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    planes = np.empty((height * 3 // 2, width), np.uint8)
    planes[height:] = 128
    fifo = av.AudioFifo()
    per_frame = sample_rate // fps
    apos = 0
    for i in range(int(minutes * 60 * fps)):
        slide = int(i / (fps * slide_s))
        luma = planes[:height]
        luma[:] = (40 + 150 * ((xx + 97 * slide) % width / width) * (yy / height)).astype(np.uint8)
        luma[height // 7 : height * 3 // 7, width // 6 : width * 5 // 6] = 60 + (slide * 37) % 180
        box = width * 2 // 3 + int(width / 12 * np.sin(i / 40))
        luma[height * 4 // 7 : height * 13 // 14, box : box + width // 5] = (60 + i % 50) & 0xFF
        luma[height * 27 // 28 :, : (i * 7) % width] = 240
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = i
        for packet in video.encode(frame):
            container.mux(packet)
        t = (apos + np.arange(per_frame)) / sample_rate
        voice = 0.2 * np.sin(2 * np.pi * (180 + 40 * np.sin(t)) * t) + 0.02 * rng.standard_normal(t.size)
        chunk = av.AudioFrame.from_ndarray(
            np.stack([voice, voice]).astype(np.float32), format="fltp", layout="stereo"
        )
        chunk.sample_rate, chunk.pts = sample_rate, apos
        apos += per_frame
        fifo.write(chunk)
        while fifo.samples >= 1024:
            for packet in audio.encode(fifo.read(1024)):
                container.mux(packet)
    for stream in (video, audio):
        for packet in stream.encode():
            container.mux(packet)
    container.close()
    tmp.replace(out)
    return out
