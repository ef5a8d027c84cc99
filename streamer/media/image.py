"""Live pictures: encoded images (JPEG, PNG, WebP) and raw RGB bytes to uint8 [H, W, 3] arrays.

The dimensions are read from the image header and checked against the limits *before* any
decoding, so a small file that claims a gigapixel picture costs nothing.
"""

from __future__ import annotations

import struct
from typing import Literal

import numpy as np

from streamer.errors import InputError, MediaError, UnsupportedMediaError
from streamer.media.types import MediaLimits

__all__ = ["decode_image", "rgb_from_bytes", "image_format", "image_size", "encode_png", "encode_jpeg"]

_DECODERS: dict[str, Literal["mjpeg", "png", "webp"]] = {"jpeg": "mjpeg", "png": "png", "webp": "webp"}


def image_format(data: bytes) -> str | None:
    """``"jpeg"``, ``"png"`` or ``"webp"`` from the magic bytes; None if none of them."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 9 > n:
                return None
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        if length < 2:
            return None
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from an encoded image's header, or None if it cannot be read."""
    fmt = image_format(data)
    if fmt == "png":
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if fmt == "jpeg":
        return _jpeg_size(data)
    if fmt == "webp":
        return _webp_size(data)
    return None


def _check_size(width: int, height: int, limits: MediaLimits) -> None:
    if width <= 0 or height <= 0:
        raise MediaError(f"image has invalid dimensions {width}x{height}")
    if width > limits.max_width or height > limits.max_height or width * height > limits.max_pixels:
        raise UnsupportedMediaError(
            f"image {width}x{height} is over the limit of {limits.max_width}x{limits.max_height} / {limits.max_pixels} pixels"
        )


def decode_image(data: bytes, limits: MediaLimits | None = None) -> np.ndarray:
    """Decode a JPEG, PNG or WebP image to uint8 [H, W, 3] RGB (alpha is dropped).

    Raises UnsupportedMediaError for another format or dimensions over ``limits``, MediaError
    for a damaged image, InputError for an empty or oversized payload.
    """
    import av

    limits = limits or MediaLimits()
    data = bytes(data)
    if not data:
        raise InputError("empty image")
    if len(data) > limits.max_image_bytes:
        raise InputError(f"image of {len(data)} bytes is over the limit of {limits.max_image_bytes}")
    fmt = image_format(data)
    if fmt is None:
        raise UnsupportedMediaError("image is not JPEG, PNG or WebP")
    size = image_size(data)
    if size is None:
        raise MediaError(f"damaged {fmt.upper()} image: no readable header")
    _check_size(*size, limits)
    try:
        ctx = av.CodecContext.create(_DECODERS[fmt], "r")
        frames = list(ctx.decode(av.Packet(data)))
        frames += list(ctx.decode(None))
    except (av.FFmpegError, ValueError) as exc:
        raise MediaError(f"damaged {fmt.upper()} image: {exc}") from exc
    if not frames:
        raise MediaError(f"damaged {fmt.upper()} image: nothing decoded")
    frame = frames[0]
    _check_size(frame.width, frame.height, limits)
    try:
        return frame.to_ndarray(format="rgb24")
    except (av.FFmpegError, ValueError) as exc:
        raise MediaError(f"cannot convert {fmt.upper()} image to RGB: {exc}") from exc


def rgb_from_bytes(data: bytes, width: int, height: int, limits: MediaLimits | None = None) -> np.ndarray:
    """Raw packed RGB24 bytes (row-major, no padding) as a uint8 [height, width, 3] array (a copy)."""
    limits = limits or MediaLimits()
    if width <= 0 or height <= 0:
        raise InputError(f"invalid raw image dimensions {width}x{height}")
    if width > limits.max_width or height > limits.max_height or width * height > limits.max_pixels:
        raise InputError(f"raw image {width}x{height} is over the size limit")
    if len(data) != width * height * 3:
        raise InputError(f"raw RGB image {width}x{height} needs {width * height * 3} bytes, got {len(data)}")
    return np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3).copy()


def encode_png(image: np.ndarray) -> bytes:
    """A uint8 [H, W, 3] RGB array as PNG bytes (for ``probe --dump`` and tests)."""
    import av

    image = np.ascontiguousarray(image, dtype=np.uint8)
    height, width = image.shape[:2]
    ctx = av.CodecContext.create("png", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "rgb24"
    frame = av.VideoFrame.from_ndarray(image, format="rgb24")
    packets = list(ctx.encode(frame)) + list(ctx.encode(None))
    return b"".join(bytes(p) for p in packets)


def encode_jpeg(image: np.ndarray, quality: int = 5) -> bytes:
    """A uint8 [H, W, 3] RGB array as baseline JPEG bytes (live clients, benchmarks).

    ``quality`` is FFmpeg's qscale: 2 (best) to 31 (smallest); 5 is about a browser's 0.8.
    Odd sizes are fine (4:2:0 chroma is rounded up).
    """
    import av

    image = np.ascontiguousarray(image, dtype=np.uint8)
    height, width = image.shape[:2]
    ctx = av.CodecContext.create("mjpeg", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuvj420p"
    ctx.options = {"qmin": str(quality), "qmax": str(quality)}
    frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuvj420p")
    packets = list(ctx.encode(frame)) + list(ctx.encode(None))
    return b"".join(bytes(p) for p in packets)
