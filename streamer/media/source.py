"""``open_media``: a file as streaming iterators of timestamped video frames and audio blocks.

    with open_media("meeting.mp4", SamplingPolicy.fixed_rate(1.0)) as media:
        media.info                 # MediaInfo: duration, video/audio stream info
        for item in media.items(): # VideoFrame | AudioFrames, merged in timestamp order
            ...
        media.warnings             # list[str]: what was damaged, skipped or dropped

Video and audio are read through separate demuxer contexts, so video may seek while audio is
read sequentially; ``items()`` merges the two lazily (memory stays bounded by one audio block and
one frame). Iterators may be consumed partially; :meth:`MediaSource.close` releases everything.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from streamer.errors import MediaError
from streamer.media.audio import iter_audio_frames
from streamer.media.container import WarningLog, open_container, probe_info
from streamer.media.framing import DEFAULT_BLOCK_FRAMES
from streamer.media.policy import SamplingPolicy
from streamer.media.types import AudioFrames, MediaInfo, MediaLimits, VideoFrame
from streamer.media.video import DecodeOptions, iter_video_frames

if TYPE_CHECKING:  # PyAV is imported where it is used; its types are for the checker only
    from av.container import InputContainer

__all__ = ["MediaSource", "open_media"]

_T = TypeVar("_T")


class MediaSource:
    """An opened media file. Use :func:`open_media` to create one."""

    def __init__(
        self,
        path: str,
        policy: SamplingPolicy,
        limits: MediaLimits,
        block_frames: int = DEFAULT_BLOCK_FRAMES,
        options: DecodeOptions | None = None,
    ) -> None:
        self.path = path
        self.policy = policy
        self.limits = limits
        self.block_frames = block_frames
        self.options = options or DecodeOptions()
        self._log = WarningLog(limits.max_warnings)
        self._containers: list[InputContainer] = []
        container = open_container(path, limits)
        try:
            probe = probe_info(container, path, limits)
        except Exception:
            container.close()
            raise
        container.close()
        self.info: MediaInfo = probe.info
        self._video_index = probe.video_index
        self._audio_index = probe.audio_index
        for w in probe.warnings:
            self._log.add(w)

    @property
    def warnings(self) -> list[str]:
        """Everything damaged, skipped, dropped or suspicious so far (grows while iterating)."""
        return self._log.items

    def video(self) -> Iterator[VideoFrame]:
        """The sampled video frames in presentation order (nothing if there is no video)."""
        index = self._video_index
        if index is None:
            return iter(())
        return self._guarded(
            lambda c: iter_video_frames(
                c, index, self.info, self.policy, self.limits, self._log, self.options
            )
        )

    def audio(self) -> Iterator[AudioFrames]:
        """The audio as 16 kHz mono 640-sample frames in blocks (nothing if there is no audio)."""
        index = self._audio_index
        if index is None:
            return iter(())
        return self._guarded(
            lambda c: iter_audio_frames(c, index, self.info, self.limits, self._log, self.block_frames)
        )

    def items(self) -> Iterator[VideoFrame | AudioFrames]:
        """Video frames and audio blocks merged by ``t_s`` (ties: audio first)."""
        tagged_audio: Iterator[tuple[float, int, VideoFrame | AudioFrames]]
        tagged_video: Iterator[tuple[float, int, VideoFrame | AudioFrames]]
        tagged_audio = ((a.t_s, 0, a) for a in self.audio())
        tagged_video = ((v.t_s, 1, v) for v in self.video())
        for _, _, item in heapq.merge(tagged_audio, tagged_video, key=lambda x: (x[0], x[1])):
            yield item

    def _guarded(self, make: Callable[[InputContainer], Iterator[_T]]) -> Iterator[_T]:
        import av

        container = open_container(self.path, self.limits)
        self._containers.append(container)
        try:
            yield from make(container)
        except av.FFmpegError as exc:
            self._log.add(f"decoding stopped early: {exc}")
        except MemoryError as exc:
            raise MediaError(f"{self.path}: out of memory while decoding") from exc
        finally:
            container.close()
            if container in self._containers:
                self._containers.remove(container)

    def close(self) -> None:
        """Close every container still open (iterators in progress end)."""
        for container in self._containers:
            container.close()
        self._containers.clear()

    def __enter__(self) -> MediaSource:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_media(
    path: str | os.PathLike[str],
    policy: SamplingPolicy | None = None,
    limits: MediaLimits | None = None,
    *,
    block_frames: int = DEFAULT_BLOCK_FRAMES,
    options: DecodeOptions | None = None,
) -> MediaSource:
    """Open a media file for streaming decode; default policy 1 fps, default limits.

    Raises MediaError if the file cannot be read as media at all, UnsupportedMediaError if no
    stream is within ``limits`` or decodable. Damage found while decoding becomes warnings.
    """
    return MediaSource(
        os.fspath(path),
        policy or SamplingPolicy(),
        limits or MediaLimits(),
        block_frames=block_frames,
        options=options,
    )
