"""Open untrusted media files safely and read their metadata (the I/O boundary with PyAV).

Every container is opened with FFmpeg options that allow the local ``file`` protocol only and an
allowlist of demuxers (no playlists, concat lists, network or device inputs), with an I/O
timeout. PyAV errors become :mod:`streamer.errors` exceptions here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar, cast, overload

from streamer.errors import MediaError, UnsupportedMediaError
from streamer.media.types import AudioStreamInfo, MediaInfo, MediaLimits, VideoStreamInfo

if TYPE_CHECKING:  # PyAV is imported where it is used; its types are for the checker only
    from fractions import Fraction

    from av.audio.frame import AudioFrame
    from av.audio.stream import AudioStream
    from av.container import InputContainer
    from av.packet import Packet
    from av.stream import Stream
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

__all__ = ["ALLOWED_DEMUXERS", "PacketDecoder", "open_container", "probe_info", "ProbeResult", "WarningLog"]

# Demuxers a file may be read with: single-file containers and elementary streams only.
ALLOWED_DEMUXERS = (
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,wav,w64,aiff,caf,mp3,aac,flac,ogg,mpegts,mpeg,"
    "flv,asf,ivf,h264,hevc,m4v,mjpeg,jpeg_pipe,png_pipe,webp_pipe,gif,amr,ac3,eac3,wv,nut,mxf,rm,au"
)
_OPEN_TIMEOUT_S = (20.0, 20.0)  # (open, read) seconds without progress before FFmpeg is interrupted


class WarningLog:
    """A bounded, de-duplicated list of warnings shared by the parts of one media source."""

    def __init__(self, limit: int = 100) -> None:
        self.items: list[str] = []
        self._seen: set[str] = set()
        self._limit = limit

    def add(self, message: str) -> None:
        if message in self._seen:
            return
        self._seen.add(message)
        if len(self.items) < self._limit:
            self.items.append(message)
        elif len(self.items) == self._limit:
            self.items.append("further warnings suppressed")


def open_container(path: str | os.PathLike[str], limits: MediaLimits) -> InputContainer:
    """``av.open`` for reading with the safety options; raises MediaError if it cannot be opened."""
    import av

    path = os.fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise MediaError(f"{path}: no such file") from exc
    except OSError as exc:
        raise MediaError(f"{path}: cannot stat: {exc.strerror or exc}") from exc
    if not os.path.isfile(path):
        raise MediaError(f"{path}: not a regular file")
    if st.st_size == 0:
        raise MediaError(f"{path}: empty file")
    if st.st_size > limits.max_file_bytes:
        raise UnsupportedMediaError(
            f"{path}: {st.st_size} bytes is over the limit of {limits.max_file_bytes}"
        )
    options = {"protocol_whitelist": "file", "format_whitelist": ALLOWED_DEMUXERS}
    try:
        return av.open(path, mode="r", container_options=options, timeout=_OPEN_TIMEOUT_S)
    except av.error.PermissionError as exc:
        raise MediaError(f"{path}: permission denied") from exc
    except (av.error.InvalidDataError, av.error.ArgumentError, av.error.DemuxerNotFoundError) as exc:
        raise MediaError(
            f"{path}: not a media file streamer can read (unknown or damaged container)"
        ) from exc
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: cannot open: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise MediaError(f"{path}: cannot open: {exc}") from exc


@dataclass
class ProbeResult:
    """Metadata plus which streams to decode (their indices in the container)."""

    info: MediaInfo  # what the file is
    video_index: int | None  # container stream index of the chosen video stream
    audio_index: int | None  # container stream index of the chosen audio stream
    warnings: list[str] = field(default_factory=list)  # problems found while probing


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    try:
        return float(value * time_base)
    except (TypeError, ZeroDivisionError, OverflowError):
        return None


def _container_start_s(container: InputContainer) -> float:
    start = getattr(container, "start_time", None)
    if start is not None:
        return float(start) / 1_000_000
    starts = [_seconds(s.start_time, s.time_base) for s in container.streams]
    known = [s for s in starts if s is not None]
    return min(known) if known else 0.0


def _decoder_name(stream: Stream) -> str | None:
    try:
        ctx = stream.codec_context
    except Exception:  # PyAV raises various errors for streams without a decoder
        return None
    if ctx is None or getattr(ctx, "codec", None) is None:
        return None
    return str(ctx.name)


def _video_info(stream: VideoStream, limits: MediaLimits) -> tuple[VideoStreamInfo, str | None]:
    """The stream's info and, if it is unusable, why."""
    ctx = stream.codec_context
    width, height = int(ctx.width or 0), int(ctx.height or 0)
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else None
    if fps is not None and not (0 < fps < 10_000):
        fps = None
    duration = _seconds(stream.duration, stream.time_base)
    frames = int(stream.frames or 0) or None
    if frames is None and duration and fps:
        frames = max(1, round(duration * fps))
    info = VideoStreamInfo(
        codec=str(ctx.name), width=width, height=height, fps=fps, num_frames=frames, duration_s=duration
    )
    problem = None
    if width <= 0 or height <= 0:
        problem = f"video stream has no valid dimensions ({width}x{height})"
    elif width > limits.max_width or height > limits.max_height or width * height > limits.max_pixels:
        problem = f"video {width}x{height} is over the limit of {limits.max_width}x{limits.max_height} / {limits.max_pixels} pixels"
    return info, problem


def _audio_info(stream: AudioStream, limits: MediaLimits) -> tuple[AudioStreamInfo, str | None]:
    ctx = stream.codec_context
    rate = int(ctx.sample_rate or 0)
    layout = getattr(ctx, "layout", None)
    channels = int(getattr(ctx, "channels", 0) or (len(layout.channels) if layout is not None else 0))
    info = AudioStreamInfo(
        codec=str(ctx.name),
        sample_rate=rate,
        channels=channels,
        duration_s=_seconds(stream.duration, stream.time_base),
    )
    problem = None
    if not limits.min_sample_rate <= rate <= limits.max_sample_rate:
        problem = (
            f"audio sample rate {rate} Hz is outside {limits.min_sample_rate}-{limits.max_sample_rate} Hz"
        )
    elif not 1 <= channels <= limits.max_channels:
        problem = f"audio has {channels} channels, outside 1-{limits.max_channels}"
    return info, problem


def probe_info(container: InputContainer, path: str, limits: MediaLimits) -> ProbeResult:
    """Choose the video and audio streams to decode and check them against ``limits``.

    A stream that cannot be decoded or is over a limit is dropped with a warning; if nothing
    usable remains, UnsupportedMediaError (or MediaError when there were no streams at all).
    """
    warnings: list[str] = []
    streams = container.streams
    start_s = _container_start_s(container)
    video: VideoStreamInfo | None = None
    audio: AudioStreamInfo | None = None
    video_index: int | None = None
    audio_index: int | None = None
    problems: list[str] = []
    for kind, candidates in (("video", list(streams.video)), ("audio", list(streams.audio))):
        # prefer the container's default disposition order: first decodable stream wins
        for stream in candidates:
            if kind == "video" and _is_attached_picture(stream):
                continue
            name = _decoder_name(stream)
            if name is None:
                problems.append(f"{kind} codec {_codec_id(stream)} is not supported")
                continue
            stream_info: VideoStreamInfo | AudioStreamInfo
            if kind == "video":
                stream_info, problem = _video_info(cast("VideoStream", stream), limits)
            else:
                stream_info, problem = _audio_info(cast("AudioStream", stream), limits)
            if problem:
                problems.append(problem)
                continue
            if isinstance(stream_info, VideoStreamInfo):
                video, video_index = stream_info, stream.index
            else:
                audio, audio_index = stream_info, stream.index
            break
    if video is None and audio is None:
        if problems:
            raise UnsupportedMediaError(f"{path}: " + "; ".join(problems))
        raise MediaError(f"{path}: no audio or video stream")
    for problem in problems:
        warnings.append(f"stream dropped: {problem}")
    warnings += _ignored_streams(
        "video", [s for s in streams.video if not _is_attached_picture(s)], video_index
    )
    warnings += _ignored_streams("audio", list(streams.audio), audio_index)
    duration: float | None = None
    claimed = getattr(container, "duration", None)
    if claimed:
        duration = float(claimed) / 1_000_000
    if duration is None:
        known = [d for d in ((video and video.duration_s), (audio and audio.duration_s)) if d]
        duration = max(known) if known else None
    if duration is not None and (duration < 0 or duration != duration):
        duration = None
    if duration is not None and duration > limits.max_duration_s:
        warnings.append(
            f"container claims {duration:.0f} s; only the first {limits.max_duration_s:.0f} s (the limit) are decoded"
        )
    if "wav" in str(container.format.name).split(","):
        warnings += _wav_truncation(path)
    info = MediaInfo(
        path=path,
        container=str(container.format.name),
        duration_s=duration,
        start_s=start_s,
        video=video,
        audio=audio,
        size_bytes=os.path.getsize(path),
    )
    return ProbeResult(info=info, video_index=video_index, audio_index=audio_index, warnings=warnings)


def _ignored_streams(kind: str, candidates: Sequence[Stream], chosen: int | None) -> list[str]:
    """A warning naming the stream used when a file has several of ``kind`` (only one is decoded)."""
    if chosen is None or len(candidates) < 2:
        return []
    used = next(s for s in candidates if s.index == chosen)
    detail = _codec_id(used)
    if kind == "video":
        ctx = cast("VideoStream", used).codec_context
        detail += f" {ctx.width}x{ctx.height}"
    others = ", ".join(f"#{s.index}" for s in candidates if s is not used)
    return [f"{len(candidates)} {kind} streams: using stream #{chosen} ({detail}); ignoring {others}"]


_WAV_UNKNOWN_SIZES = (0, 0xFFFFFFFF)  # a live-written WAV leaves the data size unset


def _wav_truncation(path: str) -> list[str]:
    """A warning when a WAV header claims more audio than the file holds (FFmpeg silently trusts the file)."""
    try:
        with open(path, "rb") as f:
            head, size = f.read(1 << 16), os.fstat(f.fileno()).st_size
    except OSError:
        return []
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return []
    pos, byte_rate = 12, 0
    while pos + 8 <= len(head):
        chunk, length = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], "little")
        if chunk == b"fmt " and pos + 16 <= len(head):
            byte_rate = int.from_bytes(head[pos + 16 : pos + 20], "little")
        if chunk == b"data":
            held = size - (pos + 8)
            if length in _WAV_UNKNOWN_SIZES or length <= held or byte_rate <= 0:
                return []
            return [
                f"the WAV header claims {length / byte_rate:.1f} s of audio but the file holds "
                f"{held / byte_rate:.1f} s (truncated?): only that is decoded"
            ]
        pos += 8 + length + (length & 1)
    return []


def _is_attached_picture(stream: Stream) -> bool:
    disposition = getattr(stream, "disposition", None)
    try:
        return bool(disposition is not None and "attached_pic" in str(disposition).lower())
    except Exception:
        return False


def _codec_id(stream: Stream) -> str:
    try:
        return str(stream.codec_context.name)
    except Exception:
        return "(unknown)"


_MAX_CONSECUTIVE_READ_ERRORS = 32  # demuxer errors in a row before a stream is abandoned


_StreamT = TypeVar("_StreamT", "VideoStream", "AudioStream")


class PacketDecoder(Generic[_StreamT]):
    """Demux and decode one stream, skipping unreadable data and damaged packets with warnings.

    Iterating yields the decoded frames of each packet (``av.VideoFrame`` for a video stream,
    ``av.AudioFrame`` for an audio one). :meth:`restart` re-creates the demuxer (after a seek);
    the running iteration continues from the new position.
    """

    def __init__(
        self, container: InputContainer, stream: _StreamT, label: str, log: WarningLog, max_bad_packets: int
    ):
        self._container = container
        self._stream: _StreamT = stream
        self._label, self._log, self._max_bad = label, log, max_bad_packets
        self.restart()

    def restart(self) -> None:
        self._demux: Iterator[Packet[_StreamT]] = self._container.demux(self._stream)

    @overload
    def __iter__(self: PacketDecoder[VideoStream]) -> Iterator[list[VideoFrame]]: ...
    @overload
    def __iter__(self: PacketDecoder[AudioStream]) -> Iterator[list[AudioFrame]]: ...
    def __iter__(self) -> Iterator[list[VideoFrame] | list[AudioFrame]]:
        import av

        bad_packets = read_errors = 0
        while True:
            try:
                packet = next(self._demux)
                read_errors = 0
            except StopIteration:
                return
            except (av.FFmpegError, OSError) as exc:
                read_errors += 1
                self._log.add(f"{self._label}: unreadable data skipped ({type(exc).__name__})")
                if read_errors >= _MAX_CONSECUTIVE_READ_ERRORS:
                    self._log.add(f"{self._label}: stopped reading after repeated read errors")
                    return
                self.restart()
                continue
            try:
                frames = packet.decode()
            except (av.FFmpegError, ValueError) as exc:
                bad_packets += 1
                self._log.add(f"{self._label}: damaged packets skipped ({type(exc).__name__})")
                if bad_packets > self._max_bad:
                    self._log.add(f"{self._label}: too many damaged packets, stream abandoned")
                    return
                continue
            yield frames
