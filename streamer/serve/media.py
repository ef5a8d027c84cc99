"""One live connection's media decoders: pictures through the session's fps policy, PCM to 16 kHz.

The Sans-I/O decoders of :mod:`streamer.media.live` do the work; this adds the checks that
give each bad input its wire code (format, rate, channels → ``unsupported_media`` as
:class:`~streamer.errors.MediaError`; timestamps and byte counts → ``invalid_input``) and runs
large payloads in a worker thread so the event loop never stalls on a decode. Calls must not
overlap (the protocol awaits one message at a time).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from streamer.errors import MediaError
from streamer.media.image import image_format
from streamer.media.live import LiveVideo, PcmResampler
from streamer.media.policy import SamplingPolicy
from streamer.media.types import AudioFrames, VideoFrame
from streamer.serve.limits import ServeLimits
from streamer.serve.messages import IMAGE_FORMATS, PCM_FORMATS, Audio, Frame

__all__ = ["LiveMedia", "warm_up"]

INLINE_BYTES = 64 << 10  # pictures / PCM chunks larger than this are decoded in a worker thread


class LiveMedia:
    def __init__(self, limits: ServeLimits, fps: float, clock: Callable[[], float] = time.monotonic):
        media = limits.media_limits()
        self.limits = limits
        self._video = LiveVideo(SamplingPolicy.fixed_rate(fps), media, clock)
        self._audio = PcmResampler(media, clock=clock)

    async def frame(self, msg: Frame) -> VideoFrame | None:
        """The decoded frame, or None when the fps policy skips it (then it is not decoded)."""
        fmt, video = msg.format, self._video
        if fmt not in IMAGE_FORMATS:
            raise MediaError(f"frame format must be one of {', '.join(IMAGE_FORMATS)}, got {fmt!r}")
        if fmt == "rgb":
            width, height = msg.width, msg.height
            if width is None or height is None:
                raise MediaError("an rgb frame needs width and height")
            return await _run(len(msg.data), lambda: video.push_rgb(msg.data, width, height, msg.t_s))
        actual = image_format(msg.data)
        if actual != fmt:
            raise MediaError(f"frame declared {fmt} but its bytes are {actual or 'not an image'}")
        return await _run(len(msg.data), lambda: video.push_image(msg.data, msg.t_s))

    async def audio(self, msg: Audio) -> list[AudioFrames]:
        """The 16 kHz blocks now complete (possibly none: a partial frame waits for the next chunk)."""
        lim, audio = self.limits, self._audio
        if msg.format not in PCM_FORMATS:
            raise MediaError(f"audio format must be one of {', '.join(PCM_FORMATS)}, got {msg.format!r}")
        if not lim.min_sample_rate <= msg.sample_rate <= lim.max_sample_rate:
            raise MediaError(
                f"sample rate {msg.sample_rate} Hz is outside {lim.min_sample_rate}-{lim.max_sample_rate} Hz"
            )
        if not 1 <= msg.channels <= lim.max_channels:
            raise MediaError(f"channels must be in 1-{lim.max_channels}, got {msg.channels}")
        return await _run(
            len(msg.data), lambda: audio.push(msg.data, msg.format, msg.sample_rate, msg.channels, msg.t_s)
        )


def warm_up() -> None:
    """Load the image codecs once (PyAV's import and first decoder cost ~0.5 s), before serving,
    so the first client's first frame does not stall the event loop."""
    import numpy as np

    from streamer.media.image import decode_image, encode_jpeg

    decode_image(encode_jpeg(np.zeros((16, 16, 3), dtype=np.uint8)))


async def _run(nbytes: int, work: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(work) if nbytes > INLINE_BYTES else work()
