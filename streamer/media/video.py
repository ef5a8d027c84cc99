"""Decode a container's video stream into sparse-sampled, timestamped RGB frames.

Decoding does only what the policy needs: frame + slice threading; non-reference frames are
skipped (``skip_frame=NONREF``) when samples are several frames apart; keyframe seeking jumps
over long stretches when the policy allows it (and stops trying when the file's keyframes are
too far apart for it to help); only frames the sampler takes are converted to RGB; frames are
offered to the scene sampler as a luma thumbnail read straight from the decoded Y plane.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

import numpy as np

from streamer.media.container import PacketDecoder, WarningLog
from streamer.media.policy import FrameSampler, SamplingMode, SamplingPolicy, make_sampler
from streamer.media.types import MediaInfo, MediaLimits, VideoFrame

if TYPE_CHECKING:  # PyAV is imported where it is used; its types are for the checker only
    from av.container import InputContainer
    from av.video.frame import VideoFrame as AVVideoFrame
    from av.video.stream import VideoStream

__all__ = ["iter_video_frames", "luma_thumbnail", "DecodeOptions"]

_THUMB_WIDTH = 64  # pixels across a scene-detection thumbnail
_SEEK_MIN_GAP_S = 2.0  # seconds: never seek over less than this
_TOLERANCE_S = 1e-3
_SEEKABLE_DEMUXERS = ("mov", "matroska", "webm", "avi", "flv", "asf", "nut", "ivf")


class DecodeOptions:
    """Switches for the decoding shortcuts (all on by default; tests turn them off to compare)."""

    def __init__(self, threads: bool = True, skip_nonref: bool = True, seek: bool = True) -> None:
        self.threads = threads  # frame + slice threading in the decoder
        self.skip_nonref = skip_nonref  # let the decoder drop non-reference frames when sampling sparsely
        self.seek = seek  # jump to the keyframe before a far-away target


def luma_thumbnail(frame: AVVideoFrame, width: int = _THUMB_WIDTH) -> np.ndarray:
    """A small uint8 grey picture of an ``av.VideoFrame``, read from its Y plane when it is 8-bit YUV."""
    fmt = frame.format.name
    w, h = frame.width, frame.height
    step = max(1, w // width)
    eight_bit_yuv = fmt.startswith(("yuv", "yuvj", "nv12", "nv21", "gray")) and not any(
        tag in fmt for tag in ("p9", "p10", "p12", "p14", "p16", "le", "be", "f32")
    )
    if eight_bit_yuv and fmt != "gray" or fmt == "gray":
        plane = frame.planes[0]
        rows = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(-1, plane.line_size)
        return np.ascontiguousarray(rows[:h:step, :w:step])
    tw = max(1, w // step)
    th = max(1, h // step)
    return frame.reformat(width=tw, height=th, format="gray").to_ndarray()


def _wants_nonref_skip(policy: SamplingPolicy, fps: float | None) -> bool:
    if not fps:
        return False
    if policy.mode is SamplingMode.FIXED_RATE:
        return fps / policy.fps >= 4
    if policy.mode is SamplingMode.SCENE:
        return policy.min_interval_s * fps >= 4
    return False  # MAX_FRAMES: exact reference frame indices; seeking does the skipping


def iter_video_frames(
    container: InputContainer,
    stream_index: int,
    info: MediaInfo,
    policy: SamplingPolicy,
    limits: MediaLimits,
    log: WarningLog,
    options: DecodeOptions | None = None,
    sampler: FrameSampler | None = None,
) -> Iterator[VideoFrame]:
    """Yield the frames ``policy`` picks, in presentation order, from an open container.

    Damaged packets are skipped with a warning in ``log``; decoding stops at the end of the
    stream, after the sampler's last target, or at ``limits.max_duration_s``.
    """
    import av

    opts = options or DecodeOptions()
    stream = cast("VideoStream", container.streams[stream_index])  # probe_info chose a video stream
    vinfo = info.video
    assert vinfo is not None
    if sampler is None:
        sampler = make_sampler(
            policy, duration_s=vinfo.duration_s or info.duration_s, num_frames=vinfo.num_frames, fps=vinfo.fps
        )
    ctx = stream.codec_context
    if opts.threads:
        ctx.thread_type = "AUTO"
        ctx.thread_count = 0
    if opts.skip_nonref and _wants_nonref_skip(policy, vinfo.fps):
        ctx.skip_frame = "NONREF"
    can_seek = (
        opts.seek
        and policy.mode is not SamplingMode.SCENE
        and any(name in info.container for name in _SEEKABLE_DEMUXERS)
    )
    seek_gap_s = max(_SEEK_MIN_GAP_S, 1.0 / policy.fps if policy.mode is SamplingMode.FIXED_RATE else 0.0)
    if policy.mode is SamplingMode.FIXED_RATE and 1.0 / policy.fps < _SEEK_MIN_GAP_S:
        can_seek = False
    start_s = info.start_s
    zero_s = start_s  # the time every frame's is counted from
    frame_period = 1.0 / vinfo.fps if vinfo.fps else 0.04

    last_t: float | None = None  # time of the last decoded frame
    seek_from_t: float | None = None  # where we were when we last sought (None: no seek pending)
    seek_target: float | None = None
    taken = 0
    sought = False  # the next frame comes after a seek (a jump in time is expected)
    packets = PacketDecoder(container, stream, "video", log, limits.max_bad_packets)
    for frames in packets:
        for frame in frames:
            t = frame.time
            if t is not None and last_t is None and start_s - frame_period / 2 < t < start_s:
                # The container starts a little after the first picture (Matroska with Opus can, by
                # the audio's pre-roll): the pictures count from it, or every one is a little early
                # and a sampler at the frame rate skips each.
                zero_s = t
            t = (t - zero_s) if t is not None else (last_t + frame_period if last_t is not None else 0.0)
            if seek_from_t is not None:
                # first frame after a seek: did the jump help?
                assert seek_target is not None
                if t <= seek_from_t + _TOLERANCE_S:
                    seek_gap_s = max(seek_gap_s * 2, seek_target - seek_from_t + 1.0)  # keyframes too sparse
                elif t > seek_target + max(frame_period, 0.1):
                    can_seek = False  # inexact seeking in this file: stop doing it
                    log.add("video: seeking is imprecise in this file; decoding sequentially")
                seek_from_t = seek_target = None
            if last_t is not None and t + _TOLERANCE_S < last_t:
                continue  # out-of-order timestamp (damaged file): never go back in time
            if last_t is not None and not sought and t - last_t > max(2.0, 10 * frame_period):
                log.add(
                    f"video: no decodable frame between {last_t:.2f} s and {t:.2f} s (damaged or missing data)"
                )
            sought = False
            last_t = t
            if t > limits.max_duration_s:
                log.add(f"video: stopped at the {limits.max_duration_s:.0f} s duration limit")
                return
            if (
                frame.width * frame.height > limits.max_pixels
                or frame.width > limits.max_width
                or frame.height > limits.max_height
            ):
                log.add(f"video: frame of {frame.width}x{frame.height} over the size limit skipped")
                continue
            target = sampler.next_target_s()
            if target is None:
                return
            if t < target - _TOLERANCE_S and not sampler.needs_thumbnail(t):
                continue
            thumb = luma_thumbnail(frame) if sampler.needs_thumbnail(t) else None
            if sampler.offer(t, thumb):
                try:
                    image = frame.to_ndarray(format="rgb24")
                except (av.FFmpegError, ValueError) as exc:
                    log.add(f"video: frame at {t:.2f} s could not be converted ({type(exc).__name__})")
                    continue
                taken += 1
                yield VideoFrame(t_s=t, image=image)
            target = sampler.next_target_s()
            if target is None:
                return
            if can_seek and target - t > seek_gap_s:
                assert stream.time_base is not None, "a demuxed stream always has a time base"
                try:
                    container.seek(int((target + start_s) / stream.time_base), stream=stream, backward=True)
                except (av.FFmpegError, OverflowError, ValueError):
                    can_seek = False
                    break
                seek_from_t, seek_target = t, target
                sought = True
                packets.restart()
                break  # frames still buffered from before the jump are stale
    claimed = vinfo.duration_s or info.duration_s
    if taken == 0:
        log.add("video: no frame could be decoded")
    elif claimed and last_t is not None and last_t + 1.0 + 2 * frame_period < claimed:
        log.add(f"video ends at {last_t:.2f} s, before the {claimed:.2f} s the container claims (truncated?)")
