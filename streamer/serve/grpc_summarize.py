"""The ``Summarize`` call: a recording → progress events, each chunk's notes, then the summary.

The source is a file on the server, allowed only under the operator's ``summarize_dir`` (the
resolved path must stay inside it: no ``..``, no symlink out), or a file uploaded on the same
call as ``data`` chunks after ``start`` (written to a private temporary directory, at most
``max_upload_bytes``, deleted afterwards). The pipeline (:func:`streamer.summarize.summarize_recording`)
runs in a worker thread, never on the event loop; its progress reaches the client through a
:class:`StreamProgress`. A client that goes away stops the run at its next progress point
(every few seconds of media) and its session is closed. At most ``max_summaries`` run at once;
more calls are refused with ``session_limit``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from streamer.errors import InputError, SessionError, StreamerError
from streamer.serve.proto.streamer.v1 import streamer_pb2 as pb
from streamer.summarize.progress import Progress
from streamer.summarize.result import Note

__all__ = [
    "PATH_NOT_ALLOWED",
    "UNIMPLEMENTED",
    "Refused",
    "StreamProgress",
    "allowed_path",
    "summarize_options",
    "Summarizer",
]

PATH_NOT_ALLOWED = "path_not_allowed"  # gRPC only: a server path outside summarize_dir, or none allowed
UNIMPLEMENTED = "unimplemented"  # gRPC only: this server's engine cannot summarize (no model)


class Refused(StreamerError):
    """A Summarize call refused with a stable ``code``."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


def allowed_path(path: str, root: str | None) -> Path:
    """``path`` (relative to ``root`` or absolute) if it names a file inside ``root``; else Refused."""
    if root is None:
        raise Refused("this server summarizes uploaded files only (no --summarize-dir)", PATH_NOT_ALLOWED)
    base = Path(root).resolve()
    target = (base / path).resolve()
    if not target.is_relative_to(base):
        raise Refused(f"{path!r} is outside the directory this server may read", PATH_NOT_ALLOWED)
    if not target.is_file():
        raise InputError(f"{path!r} is not a file under the allowed directory")
    return target


def summarize_options(start: pb.SummarizeStart) -> Any:
    """:class:`~streamer.summarize.SummarizeOptions` from the request (unset: the CLI's defaults)."""
    from streamer.summarize.options import SummarizeOptions

    kwargs: dict[str, Any] = {}
    for name in ("fps", "note_tokens", "summary_tokens", "max_context_tokens"):
        if start.HasField(name):
            kwargs[name] = getattr(start, name)
    minutes = start.chunk_minutes if start.HasField("chunk_minutes") else 1.0
    return SummarizeOptions.from_minutes(minutes, **kwargs)


class StreamProgress(Progress):
    """Progress that posts events to an asyncio queue from the worker thread; raises once cancelled."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[pb.SummarizeEvent]):
        super().__init__()
        self.loop, self.queue = loop, queue
        self.cancelled = False

    def _post(self, event: pb.SummarizeEvent) -> None:
        if self.cancelled:
            raise SessionError("the summary was cancelled (the client went away)")
        self.loop.call_soon_threadsafe(self.queue.put_nowait, event)

    def _progress(self, info: str = "") -> pb.SummarizeEvent:
        speed, _, _ = self.rates()
        event = pb.SummarizeEvent(
            progress=pb.SummarizeProgress(done_s=self.done_s, tokens=self.tokens, speed=speed, info=info)
        )
        if self.total_s is not None:
            event.progress.total_s = self.total_s
        return event

    def begin(self, name: str, total_s: float | None, done_s: float = 0.0) -> None:
        super().begin(name, total_s, done_s)
        self._post(self._progress())

    def advance(self, done_s: float, tokens: int) -> None:
        super().advance(done_s, tokens)
        self._post(self._progress())

    def chunk(self, note: Note, chunks: int | None) -> None:
        super().chunk(note, chunks)
        self._post(
            pb.SummarizeEvent(
                note=pb.SummaryNote(index=note.index, start_s=note.start_s, end_s=note.end_s, text=note.text)
            )
        )

    def info(self, text: str) -> None:
        self._post(self._progress(text))


class Summarizer:
    """Runs Summarize calls for one server (``engine``: the model engine, or None if there is none)."""

    def __init__(self, engine: Any, summarize_dir: str | None, max_upload_bytes: int, max_summaries: int):
        self.engine = engine
        self.summarize_dir = summarize_dir
        self.max_upload_bytes = max_upload_bytes
        self._slots = asyncio.Semaphore(max_summaries)

    async def run(self, requests: AsyncIterator[Any]) -> AsyncIterator[pb.SummarizeEvent]:
        """The events of one call; raises Refused / InputError / SessionError to end it.

        The slot and the upload's temporary folder are held until the worker thread has ended,
        also when the client left earlier (the worker stops at its next progress point).
        """
        if self.engine is None or not hasattr(self.engine, "tokenizer"):
            raise Refused("this server's engine has no model to summarize with", UNIMPLEMENTED)
        first = await anext(requests, None)
        if not isinstance(first, pb.SummarizeRequest) or first.WhichOneof("message") != "start":
            raise InputError("the first Summarize message must be `start`")
        start = first.start
        options = summarize_options(start)
        if self._slots.locked():
            raise Refused("the server is already running its maximum of summaries", "session_limit")
        await self._slots.acquire()
        tmp: str | None = None
        job: asyncio.Future[Any] | None = None

        def release(done: object = None) -> None:
            if isinstance(done, asyncio.Future) and not done.cancelled():
                done.exception()  # retrieved: a client that left never reads it
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            self._slots.release()

        try:
            if start.WhichOneof("source") == "path":
                path = allowed_path(start.path, self.summarize_dir)
            elif start.WhichOneof("source") == "upload_name":
                tmp = tempfile.mkdtemp(prefix="streamer-upload-")
                path = await self._receive(requests, start.upload_name, Path(tmp))
            else:
                raise InputError("start must name a `path` or an `upload_name`")
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[pb.SummarizeEvent] = asyncio.Queue()
            progress = StreamProgress(loop, queue)
            job = asyncio.ensure_future(asyncio.to_thread(self._run, path, options, progress))
            job.add_done_callback(release)
            try:
                async for event in _events(job, queue):
                    yield event
            finally:
                progress.cancelled = True  # a client that left stops the worker at its next progress point
        finally:
            if job is None:
                release()

    def _run(self, path: Path, options: Any, progress: StreamProgress) -> pb.SummarizeEvent:
        """On the worker thread: the whole pipeline, then the rendered result."""
        from streamer.summarize import render_json, render_markdown, summarize_recording

        result = summarize_recording(self.engine, os.fspath(path), options, progress=progress)
        return pb.SummarizeEvent(
            result=pb.SummaryResult(markdown=render_markdown(result), json=render_json(result))
        )

    async def _receive(self, requests: AsyncIterator[Any], name: str, folder: Path) -> Path:
        suffix = Path(name).suffix[:16] if Path(name).suffix.isascii() else ""
        path = folder / f"upload{suffix}"
        size = 0
        with open(path, "wb") as f:
            async for req in requests:
                if not isinstance(req, pb.SummarizeRequest) or req.WhichOneof("message") != "data":
                    raise InputError("after `start`, a Summarize upload sends only `data` chunks")
                size += len(req.data)
                if size > self.max_upload_bytes:
                    raise Refused(
                        f"the upload is over the limit of {self.max_upload_bytes} bytes", "message_too_large"
                    )
                await asyncio.to_thread(f.write, req.data)
        if size == 0:
            raise InputError("the upload is empty")
        return path


async def _events(job: asyncio.Future[Any], queue: asyncio.Queue[pb.SummarizeEvent]) -> AsyncIterator[Any]:
    """The worker's progress events as they come, then its result (or its exception)."""
    while not job.done() or not queue.empty():
        getter = asyncio.ensure_future(queue.get())
        await asyncio.wait({getter, job}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            yield getter.result()
        else:
            getter.cancel()
    yield job.result()
