"""``streamer summarize --ray``: recordings spread over the replicas of the Serve application.

Driver (the CLI, :func:`summarize_on_ray`)                 replica (:func:`run_job`)
──────────────────────────────────────────                 ─────────────────────────────────────────
one :class:`SummarizeJob` per recording, at most one        ``summarize_recording`` in a worker thread,
per running replica in flight (the router places each      the same code as the local path, state saved
on the replica with the most free capacity)  ──────────▶   after each chunk in the job's state folder
progress lines replayed from the events      ◀──────────   events: begin / advance / chunk / info,
output written where the local run writes it               then done (the rendered text) or failed

Same outputs: the replica renders with the local renderer; the driver writes the text exactly where
and how the local path does. Same resume: the state folder is the local one (inputs, outputs and
state folders must be at the same paths on every node, e.g. a shared file system; on one machine
they are). Failures: a job whose replica dies (the stream raises a Ray actor error) is sent again,
at most ``MAX_ATTEMPTS`` times; when its state folder holds chunks saved by this run the new
replica resumes after the last of them, so no finished chunk is lost or redone. A job that fails
for its own reasons (bad media, a model error) is reported like a local failure and not retried.
"""

from __future__ import annotations

import asyncio
import os
import time
import traceback
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamer.errors import InputError, StreamerError
from streamer.summarize.progress import LogProgress, Progress, make_progress
from streamer.summarize.result import Note
from streamer.text import display

__all__ = ["MAX_ATTEMPTS", "RelayProgress", "SummarizeJob", "run_job", "summarize_on_ray"]

MAX_ATTEMPTS = 3  # tries per recording when replicas die under it
_ADVANCE_EVERY_S = 0.5  # seconds between relayed advance events


@dataclass(frozen=True)
class SummarizeJob:
    """One recording for a replica (pickled by Ray)."""

    source: Path  # the media file (same path on every node)
    state_dir: Path  # its resume state folder (same path on every node)
    options: Any  # SummarizeOptions
    fmt: str  # md | json
    resume: bool  # continue from the state folder when it holds a run


# ---- replica side --------------------------------------------------------------------------------


class RelayProgress(Progress):
    """Progress calls turned into events for ``emit`` (called on the worker thread).

    ``cancelled`` is checked at every call: once set, the next call raises so the summarize stops
    at a safe point (its last finished chunk is already saved).
    """

    def __init__(self, emit: Callable[[dict[str, Any]], None]):
        super().__init__()
        self.emit = emit
        self.cancelled = False
        self._last_advance = 0.0

    def _check(self) -> None:
        if self.cancelled:
            raise InputError("the summarize job was cancelled by its driver")

    def begin(self, name: str, total_s: float | None, done_s: float = 0.0) -> None:
        super().begin(name, total_s, done_s)
        self.emit({"kind": "begin", "name": name, "total_s": total_s, "done_s": done_s})

    def advance(self, done_s: float, tokens: int) -> None:
        self._check()
        super().advance(done_s, tokens)
        now = time.monotonic()
        if now - self._last_advance >= _ADVANCE_EVERY_S:
            self._last_advance = now
            self.emit({"kind": "advance", "done_s": self.done_s, "tokens": tokens})

    def chunk(self, note: Note, chunks: int | None) -> None:
        self._check()
        Progress.chunk(self, note, chunks)
        self.emit({"kind": "chunk", "note": note.to_dict(), "chunks": chunks, "tokens": self.tokens})

    def info(self, text: str) -> None:
        self.emit({"kind": "info", "text": text})


async def run_job(engine: Any, job: SummarizeJob, replica: str) -> AsyncIterator[dict[str, Any]]:
    """Summarize ``job`` on this replica's engine; events as :class:`RelayProgress` makes them, then the end."""
    from streamer.summarize import StateDir, render, summarize_recording

    loop = asyncio.get_running_loop()
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def emit(event: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(events.put_nowait, event)

    progress = RelayProgress(emit)

    def work() -> dict[str, Any]:
        if getattr(engine, "loaded", None) is None:
            return {"kind": "failed", "message": "this deployment serves a fake engine (no model)"}
        try:
            result = summarize_recording(
                engine, job.source, job.options, state_dir=StateDir(job.state_dir), resume=job.resume,
                progress=progress,
            )  # fmt: skip
            text = render(result, job.fmt)
            return {"kind": "done", "text": text, "total_s": result.timings["total_s"], "replica": replica}
        except StreamerError as exc:
            return {"kind": "failed", "message": str(exc)}
        except Exception as exc:  # a bug on one input must not lose the others (as locally)
            traceback.print_exc()
            return {"kind": "failed", "message": f"internal error: {type(exc).__name__}: {str(exc)[:200]}"}

    task = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        while True:
            getter = asyncio.ensure_future(events.get())
            await asyncio.wait([getter, task], return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield getter.result()
                continue
            getter.cancel()
            while not events.empty():
                yield events.get_nowait()
            yield task.result()
            return
    finally:
        progress.cancelled = True  # the driver went away: stop at the next progress call
        if not task.done():
            await asyncio.wait([task])


# ---- driver side ---------------------------------------------------------------------------------


def _ray_errors() -> tuple[type[BaseException], ...]:
    """What a dead or unreachable replica raises into a caller's stream."""
    from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

    return (RayActorError, ActorDiedError, ActorUnavailableError)


def _saved_during(state_dir: Path, since: float) -> int | None:
    """Chunks saved in ``state_dir`` by a job started at ``since`` (wall seconds), else None."""
    from streamer.summarize import StateDir

    state = StateDir(state_dir)
    try:
        if not state.exists() or state.state_file.stat().st_mtime < since:
            return None
        return state.load().chunks_done
    except (OSError, StreamerError):
        return None


class _Driver:
    def __init__(
        self, handle: Any, deliver: Callable[[Any, str, float, Progress], None], quiet: bool, jobs: int
    ):
        self.handle = handle.options(stream=True)
        self.deliver = deliver
        self.quiet = quiet
        self.slots = asyncio.Semaphore(jobs)
        self.parallel = jobs > 1
        self.failed: list[tuple[str, str]] = []

    def _progress(self) -> Progress:
        if self.parallel and not self.quiet:
            return LogProgress()  # one bar cannot show several recordings at once
        return make_progress(self.quiet)

    async def run(self, job: Any, summarize_job: SummarizeJob) -> None:
        async with self.slots:
            progress = self._progress()
            name = display(job.source.name)
            started = time.time()
            current = summarize_job
            for attempt in range(1, MAX_ATTEMPTS + 1):
                try:
                    end = await self._attempt(current, progress)
                except _ray_errors() as exc:
                    progress.end()
                    done = _saved_during(job.state_dir, started)
                    why = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
                    if attempt == MAX_ATTEMPTS:
                        self.failed.append(
                            (display(job.source), f"its replica failed {attempt} times ({why})")
                        )
                        return
                    where = f"from chunk {done}" if done else "from the start"
                    progress.info(f"{name}: its replica failed ({why}); retrying on another replica {where}")
                    current = SummarizeJob(
                        summarize_job.source, summarize_job.state_dir, summarize_job.options, summarize_job.fmt,
                        resume=summarize_job.resume or done is not None,
                    )  # fmt: skip
                    continue
                progress.end()
                if end.get("kind") == "done":
                    try:
                        self.deliver(job, end["text"], float(end["total_s"]), progress)
                    except StreamerError as exc:
                        self.failed.append((display(job.source), display(str(exc))))
                else:
                    message = display(str(end.get("message", "the replica gave no result")))
                    self.failed.append((display(job.source), message))
                    progress.info(f"{name}: failed: {message}")
                return

    async def _attempt(self, job: SummarizeJob, progress: Progress) -> dict[str, Any]:
        end: dict[str, Any] = {"kind": "failed", "message": "the replica ended the job without a result"}
        async for event in self.handle.summarize_job.remote(job):
            kind = event.get("kind")
            if kind == "begin":
                progress.begin(event["name"], event["total_s"], event["done_s"])
            elif kind == "advance":
                progress.advance(event["done_s"], event["tokens"])
            elif kind == "chunk":
                progress.tokens = event.get("tokens", progress.tokens)
                progress.chunk(Note.from_dict(event["note"]), event["chunks"])
            elif kind == "info":
                progress.info(event["text"])
            else:
                end = event
        return end


def summarize_on_ray(
    handle: Any,
    jobs: list[Any],
    options: Any,
    fmt: str,
    resume: bool,
    deliver: Callable[[Any, str, float, Progress], None],
    *,
    quiet: bool = False,
    parallel: int = 1,
) -> list[tuple[str, str]]:
    """Run the CLI's planned ``jobs`` on the deployment behind ``handle``; the failures, as the CLI lists them.

    ``deliver(job, text, total_s, progress)`` writes one finished summary (the CLI's own writer);
    ``parallel``: recordings in flight at once (normally the running replicas).
    """

    async def main() -> list[tuple[str, str]]:
        driver = _Driver(handle, deliver, quiet, max(1, parallel))
        specs = [
            SummarizeJob(
                Path(os.path.abspath(j.source)), Path(os.path.abspath(j.state_dir)), options, fmt, resume
            )
            for j in jobs
        ]
        await asyncio.gather(*(driver.run(job, spec) for job, spec in zip(jobs, specs, strict=True)))
        return driver.failed

    return asyncio.run(main())
