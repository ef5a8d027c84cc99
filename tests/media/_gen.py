"""Generated test media: pictures whose colour encodes the second, tones whose pitch does.

Nothing binary is stored in the repository; every file is written by these helpers into a
temporary directory (small sizes, a few seconds).
"""

from __future__ import annotations

import fractions
import math
import struct
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

LEVELS = (16, 128, 240)  # per channel; 27 colours, far apart even after lossy coding
PALETTE = np.array([(r, g, b) for r in LEVELS for g in LEVELS for b in LEVELS], dtype=np.uint8)


def colour_of_second(s: int) -> np.ndarray:
    return PALETTE[s % len(PALETTE)]


def second_of_image(image: np.ndarray) -> int:
    """Which second's colour the centre of ``image`` shows (mod 27)."""
    h, w = image.shape[:2]
    mean = image[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].reshape(-1, 3).mean(axis=0)
    return int(np.argmin(((PALETTE.astype(float) - mean) ** 2).sum(axis=1)))


def tone_hz(s: int) -> float:
    return 400.0 + 200.0 * (s % 12)


def second_of_tone(samples: np.ndarray, rate: int = 16000) -> int:
    spec = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    f = np.argmax(spec) * rate / samples.size
    return int(round((f - 400.0) / 200.0))


def have_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
        return True
    except Exception:
        return False


def write_media(
    path: Path,
    *,
    vcodec: str | None = "libx264",
    acodec: str | None = "aac",
    duration_s: float = 4.0,
    fps: int = 10,
    size: tuple[int, int] = (128, 96),
    pix_fmt: str = "yuv420p",
    sample_rate: int = 48000,
    channels: int = 2,
    frame_times: Sequence[float] | None = None,
    start_s: float = 0.0,
    fmt: str | None = None,
    gop: int | None = None,
    vopts: dict[str, str] | None = None,
) -> Path:
    """Write a file whose video shows ``colour_of_second(floor(t))`` and audio plays ``tone_hz``.

    ``frame_times`` gives explicit (variable-rate) presentation times; ``start_s`` shifts every
    timestamp (a non-zero start time) while the content still encodes the time from the start.
    """
    w, h = size
    container = av.open(str(path), "w", format=fmt)
    vstream = astream = None
    if vcodec:
        vstream = container.add_stream(vcodec, rate=fps, options=vopts or {})
        vstream.width, vstream.height, vstream.pix_fmt = w, h, pix_fmt
        tb = fractions.Fraction(1, 1000) if frame_times is not None else fractions.Fraction(1, fps)
        vstream.codec_context.time_base = tb
        if gop:
            vstream.codec_context.gop_size = gop
    if acodec:
        astream = container.add_stream(acodec, rate=sample_rate)
        astream.layout = "stereo" if channels == 2 else "mono"
    if vstream is not None:
        times = (
            list(frame_times) if frame_times is not None else [i / fps for i in range(int(duration_s * fps))]
        )
        for i, t in enumerate(times):
            img = np.empty((h, w, 3), np.uint8)
            img[:] = colour_of_second(math.floor(t + 1e-9))
            frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format=pix_fmt)
            frame.pts = round((t + start_s) / tb) if frame_times is not None else i + round(start_s * fps)
            frame.time_base = tb
            for p in vstream.encode(frame):
                container.mux(p)
        for p in vstream.encode():
            container.mux(p)
    if astream is not None:
        ctx = astream.codec_context
        n = ctx.frame_size or 1024
        fmt_name = ctx.format.name if ctx.format else "fltp"
        total = int(duration_s * sample_rate)
        pos = 0
        while pos < total:
            k = min(n, total - pos)
            t = (pos + np.arange(k)) / sample_rate
            sec = np.floor(t + 1e-9).astype(int)
            freqs = 400.0 + 200.0 * (sec % 12)
            # phase-continuous within each second
            x = (0.3 * np.sin(2 * np.pi * freqs * (t - sec))).astype(np.float32)
            data = np.stack([x] * channels)
            frame = av.AudioFrame.from_ndarray(data, format="fltp", layout=astream.layout.name)
            frame.sample_rate = sample_rate
            frame.pts = pos + round(start_s * sample_rate)
            frame.time_base = fractions.Fraction(1, sample_rate)
            if fmt_name != "fltp":
                frame = av.AudioResampler(
                    format=fmt_name, layout=astream.layout.name, rate=sample_rate
                ).resample(frame)[0]
                frame.pts = pos + round(start_s * sample_rate)
            for p in astream.encode(frame):
                container.mux(p)
            pos += k
        for p in astream.encode():
            container.mux(p)
    container.close()
    return path


def wav_bytes(samples: np.ndarray, rate: int, channels: int = 1) -> bytes:
    """A little PCM s16le WAV file as bytes (interleaved ``samples`` [N, C] or [N])."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16)
    header += b"data" + struct.pack("<I", len(pcm))
    return header + pcm
