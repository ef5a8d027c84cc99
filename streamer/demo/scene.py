"""The "shapes and beeps" world: what a demo recording contains, drawn from one seeded distribution.

A :class:`Recording` is plain data (no pixels): its size, frame rate, audio rate, background and
a list of :class:`Appearance` (one shape shown from ``t0_s`` to ``t1_s``, with its beeps).
:func:`sample_clip` draws a short clip (one shape the whole time), :func:`sample_timeline` a
"meeting-like" recording (shapes one after another with blank gaps). Both take a
``numpy.random.Generator``, so a seed fixes everything. :func:`render_frame` and
:func:`render_audio` turn a recording into pixels and samples; :mod:`streamer.demo.encode`
writes them into a container.

The distribution (issue 12): clips 4-8 s, 320-960 px wide, 16:9 or 4:3, 10-30 fps; a near-black,
dark grey or near-white background; one circle, square or upward isosceles triangle, red, green,
blue or yellow (shades varied a little), 20-35 % of the frame's height, moving left, right, up or
down at a steady speed over 30-70 % of the frame's width (height when vertical) and staying in
frame, or still. Audio 16-48 kHz: 1-4 beeps of 150-300 ms, 250-600 ms apart, the first
0.3-0.8 s in, amplitude 0.3-0.6, one tone, low (300-500 Hz) or high (1200-2000 Hz), over faint
noise. Timelines: 30-120 s; each shape shows for 3-8 s between blank gaps, its beeps within it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "COLOURS",
    "EXTRA_COLOURS",
    "SHAPES",
    "MOTIONS",
    "TONES",
    "BACKGROUNDS",
    "FORMATS",
    "Beeps",
    "Appearance",
    "Recording",
    "sample_clip",
    "sample_timeline",
    "sample_beeps",
    "render_frame",
    "render_yuv420",
    "render_audio",
    "shape_box",
]

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 210, 40),
}
# Not in the task: a colour the demo model never saw, for the LoRA-vs-full adaptation experiment.
EXTRA_COLOURS: dict[str, tuple[int, int, int]] = {"purple": (150, 60, 200)}
SHAPES = ("circle", "square", "triangle")
MOTIONS = ("left", "right", "up", "down", "still")
TONES: dict[str, tuple[float, float]] = {"low": (300.0, 500.0), "high": (1200.0, 2000.0)}  # Hz
BACKGROUNDS: dict[str, tuple[int, int]] = {"black": (5, 30), "grey": (50, 80), "white": (225, 250)}
LAST_GAP_S = 2.5  # seconds of blank screen at least at a timeline's end
SHADE = 15  # each channel of a shape's colour varies by up to this much
# (container, video codec, audio codec, audio rates the codec takes)
FORMATS: tuple[tuple[str, str, str, tuple[int, ...]], ...] = (
    ("mp4", "libx264", "aac", (16000, 22050, 24000, 32000, 44100, 48000)),
    ("mkv", "libx264", "libopus", (16000, 24000, 48000)),
    ("webm", "libvpx", "libopus", (16000, 24000, 48000)),
    ("avi", "mpeg4", "libmp3lame", (16000, 22050, 24000, 32000, 44100, 48000)),
    ("mov", "libx264", "pcm_s16le", (16000, 22050, 24000, 32000, 44100, 48000)),
)


@dataclass(frozen=True)
class Beeps:
    """Beeps of one tone: ``starts_s[i]`` .. ``starts_s[i] + lengths_s[i]``."""

    tone: str  # "low" | "high"
    freq_hz: float  # Hz
    amplitude: float  # peak, of full scale
    starts_s: tuple[float, ...]  # seconds from the recording's start
    lengths_s: tuple[float, ...]  # seconds

    @property
    def count(self) -> int:
        return len(self.starts_s)

    @property
    def end_s(self) -> float:
        """Seconds: when the last beep ends."""
        return self.starts_s[-1] + self.lengths_s[-1]


@dataclass(frozen=True)
class Appearance:
    """One shape on screen from ``t0_s`` to ``t1_s``, moving in a straight line, with its beeps."""

    colour: str  # a key of COLOURS (or EXTRA_COLOURS)
    rgb: tuple[int, int, int]  # the shade actually drawn
    shape: str  # one of SHAPES
    size: float  # shape height / frame height
    aspect: float  # shape width / shape height (1 except triangles)
    motion: str  # one of MOTIONS
    start_xy: tuple[float, float]  # centre at t0_s, in frame fractions (x of width, y of height)
    end_xy: tuple[float, float]  # centre at t1_s, in frame fractions
    t0_s: float  # seconds: first shown
    t1_s: float  # seconds: gone from here on
    beeps: Beeps

    def visible(self, t_s: float) -> bool:
        return self.t0_s <= t_s < self.t1_s

    def centre(self, t_s: float) -> tuple[float, float]:
        """Centre at ``t_s`` in frame fractions (linear between start and end)."""
        a = min(max((t_s - self.t0_s) / (self.t1_s - self.t0_s), 0.0), 1.0)
        return (
            self.start_xy[0] + a * (self.end_xy[0] - self.start_xy[0]),
            self.start_xy[1] + a * (self.end_xy[1] - self.start_xy[1]),
        )

    @property
    def travel(self) -> float:
        """Fraction of the frame's width (height, when vertical) travelled; 0 when still."""
        return abs(self.end_xy[0] - self.start_xy[0]) + abs(self.end_xy[1] - self.start_xy[1])


@dataclass(frozen=True)
class Recording:
    """Everything needed to render and encode one demo recording (and to grade answers on it)."""

    kind: str  # "clip" | "timeline"
    duration_s: float  # seconds
    width: int  # pixels
    height: int  # pixels
    fps: int  # video frames per second
    sample_rate: int  # Hz
    channels: int  # 1 or 2 (same signal in both)
    background: str  # a key of BACKGROUNDS
    background_rgb: tuple[int, int, int]
    noise: float  # standard deviation of the background noise, of full scale
    container: str  # "mp4", "mkv", ... (see FORMATS)
    video_codec: str
    audio_codec: str
    appearances: tuple[Appearance, ...]
    seed: int  # the seed it was drawn from (audio noise is drawn from it too)

    @property
    def suffix(self) -> str:
        return "." + self.container

    @property
    def num_frames(self) -> int:
        """Video frames: every ``i / fps`` before the end (so any frame rate has a frame at each whole second)."""
        return math.ceil(self.duration_s * self.fps - 1e-6)

    def appearance_at(self, t_s: float) -> Appearance | None:
        return next((a for a in self.appearances if a.visible(t_s)), None)


def _uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _frame(rng: np.random.Generator) -> tuple[int, int, int]:
    width = 16 * int(rng.integers(20, 61))  # 320 .. 960
    ratio = (9, 16) if rng.random() < 0.5 else (3, 4)
    height = 2 * round(width * ratio[0] / ratio[1] / 2)
    return width, height, int(rng.integers(10, 31))


def _format(rng: np.random.Generator) -> tuple[str, str, str, int, int]:
    container, vcodec, acodec, rates = FORMATS[int(rng.integers(len(FORMATS)))]
    return container, vcodec, acodec, int(rng.choice(rates)), int(rng.integers(1, 3))


def sample_beeps(
    rng: np.random.Generator, start_s: float, latest_end_s: float, *, count: int | None = None,
    tone: str | None = None,
) -> Beeps:  # fmt: skip
    """1-4 beeps from ``start_s`` (+0.3-0.8 s) that end by ``latest_end_s`` (redrawn until they do)."""
    tone = tone or str(rng.choice(list(TONES)))
    count = count or int(rng.integers(1, 5))
    freq = _uniform(rng, *TONES[tone])
    amplitude = _uniform(rng, 0.3, 0.6)
    for _ in range(1000):
        t = start_s + _uniform(rng, 0.3, 0.8)
        starts, lengths = [], []
        for i in range(count):
            if i:
                t += _uniform(rng, 0.25, 0.6)
            length = _uniform(rng, 0.15, 0.3)
            starts.append(round(t, 4))
            lengths.append(round(length, 4))
            t += length
        if t <= latest_end_s:
            return Beeps(tone, round(freq, 2), round(amplitude, 3), tuple(starts), tuple(lengths))
    raise ValueError(f"{count} beeps do not fit between {start_s:.2f} s and {latest_end_s:.2f} s")


def _shape(
    rng: np.random.Generator, width: int, height: int, t0: float, t1: float, beeps: Beeps,
    colour: str | None = None,
) -> Appearance:  # fmt: skip
    colour = colour or str(rng.choice(list(COLOURS)))
    base = COLOURS.get(colour) or EXTRA_COLOURS[colour]
    r, g, b = (int(np.clip(c + rng.integers(-SHADE, SHADE + 1), 0, 255)) for c in base)
    shape = str(rng.choice(SHAPES))
    size = _uniform(rng, 0.20, 0.35)
    aspect = _uniform(rng, 0.9, 1.2) if shape == "triangle" else 1.0
    half_w, half_h = size * aspect * height / width / 2, size / 2  # in frame fractions
    motion = str(rng.choice(MOTIONS))
    x, y = _uniform(rng, half_w, 1 - half_w), _uniform(rng, half_h, 1 - half_h)
    start, end = (x, y), (x, y)
    if motion != "still":
        horizontal = motion in ("left", "right")
        half = half_w if horizontal else half_h
        travel = _uniform(rng, 0.30, min(0.70, 1 - 2 * half))
        lo = _uniform(rng, half, 1 - half - travel)  # the path stays in frame
        p0, p1 = (lo, lo + travel) if motion in ("right", "down") else (lo + travel, lo)
        start, end = ((p0, y), (p1, y)) if horizontal else ((x, p0), (x, p1))
    return Appearance(
        colour=colour, rgb=(r, g, b), shape=shape, size=round(size, 4), aspect=round(aspect, 4), motion=motion,
        start_xy=start, end_xy=end, t0_s=t0, t1_s=t1, beeps=beeps,
    )  # fmt: skip


def _recording(rng: np.random.Generator, kind: str, duration: float, seed: int, make) -> Recording:  # noqa: ANN001
    width, height, fps = _frame(rng)
    container, vcodec, acodec, rate, channels = _format(rng)
    background = str(rng.choice(list(BACKGROUNDS)))
    level = int(rng.integers(*BACKGROUNDS[background], endpoint=True))
    tint = rng.integers(-4, 5, size=3)
    r, g, b = (int(np.clip(level + d, 0, 255)) for d in tint)
    noise = _uniform(rng, 0.002, 0.01)
    return Recording(
        kind=kind, duration_s=duration, width=width, height=height, fps=fps, sample_rate=rate,
        channels=channels, background=background, background_rgb=(r, g, b), noise=round(noise, 4),
        container=container, video_codec=vcodec, audio_codec=acodec,
        appearances=tuple(make(width, height)), seed=seed,
    )  # fmt: skip


def sample_clip(seed: int, *, colour: str | None = None) -> Recording:
    """A 4-8 s clip: one shape the whole time, its beeps within the clip (``colour``: force one)."""
    rng = np.random.default_rng([seed, 1])
    duration = round(_uniform(rng, 4.0, 8.0), 2)

    def make(width: int, height: int) -> list[Appearance]:
        beeps = sample_beeps(rng, 0.0, duration - 0.1)
        return [_shape(rng, width, height, 0.0, duration, beeps, colour)]

    return _recording(rng, "clip", duration, seed, make)


def sample_timeline(seed: int, *, min_s: float = 30.0, max_s: float = 120.0) -> Recording:
    """A ``min_s``-``max_s`` s recording: shapes one after another (3-8 s each) with 1.5-6 s blank
    gaps; it starts with 1.5-5 s and ends with at least 2.5 s of blank screen."""
    rng = np.random.default_rng([seed, 2])
    duration = round(_uniform(rng, min_s, max_s), 2)

    def make(width: int, height: int) -> list[Appearance]:
        out: list[Appearance] = []
        t = _uniform(rng, 1.5, 5.0)
        while True:
            length = _uniform(rng, 3.0, 8.0)
            if t + length + LAST_GAP_S > duration:
                return out
            t0, t1 = round(t, 3), round(t + length, 3)
            beeps = sample_beeps(rng, t0, t1 - 0.2)
            out.append(_shape(rng, width, height, t0, t1, beeps))
            t = t1 + _uniform(rng, 1.5, 6.0)

    return _recording(rng, "timeline", duration, seed, make)


# ---- rendering ---------------------------------------------------------------------------------
_SUPERSAMPLE = 2  # sub-pixel samples per axis for antialiased edges


def shape_box(a: Appearance, t_s: float, width: int, height: int) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) in pixels of the shape's bounding box at ``t_s``."""
    cx, cy = a.centre(t_s)
    h = a.size * height
    w = h * a.aspect
    return cx * width - w / 2, cy * height - h / 2, cx * width + w / 2, cy * height + h / 2


def _coverage(a: Appearance, box: tuple[float, float, float, float], x0: int, y0: int, nx: int, ny: int):  # noqa: ANN202
    """Fraction of each pixel of the ``ny x nx`` window at (x0, y0) the shape covers."""
    s = _SUPERSAMPLE
    offs = (np.arange(s) + 0.5) / s
    xs = (x0 + np.arange(nx)[:, None] + offs[None]).reshape(-1)  # [nx*s]
    ys = (y0 + np.arange(ny)[:, None] + offs[None]).reshape(-1)  # [ny*s]
    left, top, right, bottom = box
    u = (xs - left) / (right - left)  # 0..1 across the box
    v = (ys - top) / (bottom - top)
    uu, vv = u[None, :], v[:, None]
    inside = (uu >= 0) & (uu < 1) & (vv >= 0) & (vv < 1)
    if a.shape == "circle":
        inside &= (uu - 0.5) ** 2 + (vv - 0.5) ** 2 < 0.25
    elif a.shape == "triangle":  # apex at the top centre, base along the bottom
        inside &= np.abs(uu - 0.5) <= vv / 2
    return inside.reshape(ny, s, nx, s).mean(axis=(1, 3))


def _shape_window(rec: Recording, t_s: float) -> tuple[Appearance, int, int, np.ndarray] | None:
    """The shape at ``t_s``: (appearance, x0, y0, coverage ``[h, w]`` of the window at (x0, y0))."""
    a = rec.appearance_at(t_s)
    if a is None:
        return None
    box = shape_box(a, t_s, rec.width, rec.height)
    x0, y0 = max(int(math.floor(box[0])), 0), max(int(math.floor(box[1])), 0)
    x1, y1 = min(int(math.ceil(box[2])), rec.width), min(int(math.ceil(box[3])), rec.height)
    return a, x0, y0, _coverage(a, box, x0, y0, x1 - x0, y1 - y0)


def render_frame(rec: Recording, t_s: float) -> np.ndarray:
    """The picture at ``t_s``: uint8 RGB ``[height, width, 3]``."""
    image = np.empty((rec.height, rec.width, 3), np.uint8)
    image[:] = rec.background_rgb
    shape = _shape_window(rec, t_s)
    if shape is None:
        return image
    a, x0, y0, cover = shape
    window = image[y0 : y0 + cover.shape[0], x0 : x0 + cover.shape[1]]
    blended = window * (1 - cover[..., None]) + np.asarray(a.rgb, np.float64) * cover[..., None]
    window[:] = np.round(blended).astype(np.uint8)
    return image


def _yuv(rgb: tuple[int, int, int]) -> np.ndarray:
    """BT.601 limited-range Y, Cb, Cr of an RGB colour (what swscale's rgb24 → yuv420p computes)."""
    r, g, b = rgb
    return np.array([
        16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255,
        128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255,
        128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255,
    ])  # fmt: skip


def render_yuv420(rec: Recording, t_s: float) -> np.ndarray:
    """The picture at ``t_s`` as packed yuv420p planes, uint8 ``[height * 3 // 2, width]``.

    The same picture as :func:`render_frame` (blending is linear, so it commutes with the colour
    conversion), drawn straight into the encoder's format: no RGB → YUV conversion per frame.
    """
    h, w = rec.height, rec.width
    planes = np.empty((h * 3 // 2, w), np.uint8)
    bg = _yuv(rec.background_rgb)
    planes[:h] = round(bg[0])
    chroma = planes[h:].reshape(2, h // 2, w // 2)  # U then V, each [h/2, w/2]
    chroma[0], chroma[1] = round(bg[1]), round(bg[2])
    shape = _shape_window(rec, t_s)
    if shape is None:
        return planes
    a, x0, y0, cover = shape
    fg = _yuv(a.rgb)
    ch, cw = cover.shape
    luma = planes[y0 : y0 + ch, x0 : x0 + cw]
    luma[:] = np.round(bg[0] + (fg[0] - bg[0]) * cover).astype(np.uint8)
    # chroma: coverage averaged over each 2x2 block (aligned to even pixels)
    ex, ey = x0 % 2, y0 % 2
    padded = np.zeros((ch + ey + (ch + ey) % 2, cw + ex + (cw + ex) % 2))
    padded[ey : ey + ch, ex : ex + cw] = cover
    half = padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2).mean(axis=(1, 3))
    cy0, cx0 = (y0 - ey) // 2, (x0 - ex) // 2
    half = half[: h // 2 - cy0, : w // 2 - cx0]
    for k in (0, 1):
        window = chroma[k, cy0 : cy0 + half.shape[0], cx0 : cx0 + half.shape[1]]
        window[:] = np.round(bg[k + 1] + (fg[k + 1] - bg[k + 1]) * half).astype(np.uint8)
    return planes


def render_audio(rec: Recording) -> np.ndarray:
    """The soundtrack: float32 ``[samples]`` at ``rec.sample_rate`` (beeps over faint noise)."""
    rate = rec.sample_rate
    n = int(round(rec.duration_s * rate))
    rng = np.random.default_rng([rec.seed, 3])
    out = (rng.standard_normal(n) * rec.noise).astype(np.float64)
    fade = int(0.005 * rate)  # 5 ms raised-cosine edges: no clicks
    for a in rec.appearances:
        b = a.beeps
        phase = rng.uniform(0, 2 * np.pi)
        for start, length in zip(b.starts_s, b.lengths_s, strict=True):
            i0, i1 = int(round(start * rate)), min(int(round((start + length) * rate)), n)
            t = np.arange(i0, i1) / rate
            env = np.ones(i1 - i0)
            k = min(fade, (i1 - i0) // 2)
            if k:
                ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, k))
                env[:k], env[-k:] = ramp, ramp[::-1]
            out[i0:i1] += b.amplitude * env * np.sin(2 * np.pi * b.freq_hz * t + phase)
    return np.clip(out, -1, 1).astype(np.float32)
