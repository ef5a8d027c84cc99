"""Progress of a summarize run on stderr: a tqdm bar on a terminal, plain lines otherwise, or nothing.

Call order per input: :meth:`Progress.begin` → :meth:`advance` (often, after each prefill) and
:meth:`chunk` (after each chunk's notes) → :meth:`end`. :meth:`info` logs one line at any time.
Figures: media time done / total, x real time and tokens/s of this run, ETA from the media rate.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from streamer.summarize.clock import format_clock
from streamer.summarize.result import Note

__all__ = ["Progress", "LogProgress", "BarProgress", "make_progress"]

PREFIX = "streamer summarize: "


class Progress:
    """Silent progress (``--quiet``); the base of the others."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.name = ""
        self.total_s: float | None = None  # seconds of media in the input (None: unknown)
        self.done_s = 0.0  # seconds of media done
        self.tokens = 0  # tokens prefilled + generated in this run
        self._start_done_s = 0.0
        self._t0 = time.perf_counter()

    def begin(self, name: str, total_s: float | None, done_s: float = 0.0) -> None:
        self.name, self.total_s, self.done_s, self.tokens = name, total_s, done_s, 0
        self._start_done_s, self._t0 = done_s, time.perf_counter()

    def advance(self, done_s: float, tokens: int) -> None:
        self.done_s, self.tokens = max(self.done_s, done_s), tokens

    def chunk(self, note: Note, chunks: int | None) -> None:
        self.advance(note.end_s, self.tokens)

    def info(self, text: str) -> None:
        pass

    def end(self) -> None:
        pass

    # ---- figures --------------------------------------------------------------------------
    def rates(self) -> tuple[float, float, float | None]:
        """(x real time, tokens/s, ETA seconds or None) of this run so far."""
        wall = max(time.perf_counter() - self._t0, 1e-6)
        speed = (self.done_s - self._start_done_s) / wall
        eta = None
        if self.total_s is not None and speed > 0:
            eta = max(self.total_s - self.done_s, 0.0) / speed
        return speed, self.tokens / wall, eta

    def figures(self) -> str:
        speed, tps, eta = self.rates()
        long = (self.total_s or self.done_s) >= 3600
        total = format_clock(self.total_s, long) if self.total_s is not None else "?"
        eta_text = format_clock(eta, long) if eta is not None else "?"
        return (f"{format_clock(self.done_s, long)}/{total} media · {speed:.1f}x real time · "
                f"{tps:,.0f} tok/s · ETA {eta_text}")  # fmt: skip


class LogProgress(Progress):
    """One plain line per chunk (for logs and pipes)."""

    def begin(self, name: str, total_s: float | None, done_s: float = 0.0) -> None:
        super().begin(name, total_s, done_s)
        where = f" from {format_clock(done_s)}" if done_s else ""
        length = format_clock(total_s, total_s >= 3600) if total_s is not None else "unknown length"
        self.info(f"{name}: {length}, starting{where}")

    def chunk(self, note: Note, chunks: int | None) -> None:
        super().chunk(note, chunks)
        of = f"/{chunks}" if chunks else ""
        self.info(f"{self.name}: chunk {note.index + 1}{of} done · {self.figures()}")

    def info(self, text: str) -> None:
        print(PREFIX + text, file=self.stream, flush=True)


class BarProgress(LogProgress):
    """A tqdm bar (media seconds) with x real time, tokens/s and ETA; log lines print above it."""

    def __init__(self, stream: TextIO | None = None):
        super().__init__(stream)
        self._bar = None

    def begin(self, name: str, total_s: float | None, done_s: float = 0.0) -> None:
        from tqdm import tqdm

        Progress.begin(self, name, total_s, done_s)
        self._bar = tqdm(
            total=round(total_s, 1) if total_s else None, initial=round(done_s, 1), file=self.stream,
            desc=name, bar_format="{desc} {percentage:3.0f}%|{bar}| {postfix}", dynamic_ncols=True,
            leave=False, mininterval=0.25,
        )  # fmt: skip

    def advance(self, done_s: float, tokens: int) -> None:
        super().advance(done_s, tokens)
        if self._bar is not None:
            self._bar.set_postfix_str(self.figures(), refresh=False)
            self._bar.update(round(self.done_s, 1) - self._bar.n)

    def chunk(self, note: Note, chunks: int | None) -> None:
        Progress.chunk(self, note, chunks)
        self.advance(note.end_s, self.tokens)

    def info(self, text: str) -> None:
        if self._bar is None:
            super().info(text)
            return
        from tqdm import tqdm

        tqdm.write(PREFIX + text, file=self.stream)

    def end(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def make_progress(quiet: bool = False, stream: TextIO | None = None) -> Progress:
    """Nothing when ``quiet``; a bar when ``stream`` (default stderr) is a terminal; else log lines."""
    stream = stream or sys.stderr
    if quiet:
        return Progress(stream)
    if stream.isatty():
        return BarProgress(stream)
    return LogProgress(stream)
