"""Decode a container's audio stream into 16 kHz mono 40 ms frames, in ~1 s blocks.

Timestamps follow the sample clock from the stream's first decoded sample; a forward jump in
the stream's timestamps (a gap in the recording) is filled with silence so later audio stays
at its true time, and the gap is reported as a warning.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

from streamer.media.container import PacketDecoder, WarningLog
from streamer.media.framing import DEFAULT_BLOCK_FRAMES, AudioFramer
from streamer.media.resample import MonoResampler, frame_to_mono
from streamer.media.types import SAMPLE_RATE, AudioFrames, MediaInfo, MediaLimits

if TYPE_CHECKING:  # PyAV is imported where it is used; its types are for the checker only
    from av.audio.stream import AudioStream
    from av.container import InputContainer

__all__ = ["iter_audio_frames"]

_GAP_TOLERANCE_S = 0.1  # timestamp jumps smaller than this are jitter, not gaps


def iter_audio_frames(
    container: InputContainer,
    stream_index: int,
    info: MediaInfo,
    limits: MediaLimits,
    log: WarningLog,
    block_frames: int = DEFAULT_BLOCK_FRAMES,
) -> Iterator[AudioFrames]:
    """Yield the stream's audio as :class:`AudioFrames` blocks; the last one is padded."""
    import av

    stream = cast("AudioStream", container.streams[stream_index])  # probe_info chose an audio stream
    stream.codec_context.thread_type = "AUTO"
    start_s = info.start_s
    framer = AudioFramer(block_frames)
    resampler = MonoResampler()
    expected_in_s: float | None = None  # where the next decoded frame should start
    limit_samples = int(limits.max_duration_s * SAMPLE_RATE)
    for frames in PacketDecoder(container, stream, "audio", log, limits.max_bad_packets):
        for frame in frames:
            rate = frame.sample_rate
            if not limits.min_sample_rate <= rate <= limits.max_sample_rate:
                log.add(f"audio: frame at {rate} Hz outside the accepted rates skipped")
                continue
            if len(frame.layout.channels) > limits.max_channels:
                log.add("audio: frame with too many channels skipped")
                continue
            t = frame.time
            t = t - start_s if t is not None else expected_in_s
            if not framer.started:
                framer.start(max(0.0, t or 0.0))
            elif t is not None and expected_in_s is not None:
                gap = t - expected_in_s
                if gap > _GAP_TOLERANCE_S:
                    fill = min(gap, limits.max_gap_fill_s)
                    log.add(f"audio: gap in the stream at {expected_in_s:.2f} s filled with silence")
                    yield from framer.push(resampler.flush())
                    yield from framer.push_silence(round(fill * SAMPLE_RATE))
            try:
                mono = frame_to_mono(frame)
            except (av.FFmpegError, ValueError) as exc:
                log.add(f"audio: undecodable frame skipped ({type(exc).__name__})")
                continue
            yield from framer.push(resampler.push(mono, rate))
            base = t if t is not None else (expected_in_s or 0.0)
            expected_in_s = base + mono.size / rate
            if framer.samples_pushed > limit_samples:
                log.add(f"audio: stopped at the {limits.max_duration_s:.0f} s duration limit")
                break
        else:
            continue
        break
    yield from framer.push(resampler.flush())
    yield from framer.flush()
    claimed = info.audio.duration_s if info.audio else None
    claimed = claimed or info.duration_s
    end = framer.next_sample_s
    if end is None:
        log.add("audio: no sample could be decoded")
    elif claimed and end + 1.0 < claimed:
        log.add(f"audio ends at {end:.2f} s, before the {claimed:.2f} s the container claims (truncated?)")
