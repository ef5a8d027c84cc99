"""One recording → :class:`SummaryResult`: stream it through a session chunk by chunk.

Call :func:`summarize_recording`. The media streams from :func:`streamer.media.open_media`
(never loaded whole) into one session. Items are merged by ``t_s``; chunk ``k`` holds the items
with ``k * chunk_s <= t_s < (k + 1) * chunk_s``. When an item of a later chunk arrives (or the
media ends), the chunk's notes are asked in the session; they stay in its context (eviction keeps
text longest). After each chunk, the session snapshot and the notes are saved in the state
directory (:mod:`streamer.summarize.state`), so ``resume=True`` continues after the last
finished chunk with the same result. At the end the summary is asked (:mod:`.final`).

Prefill runs every ``PUMP_S`` seconds of media, at fixed media times (counted within each chunk),
so an interrupted and a resumed run prefill the same pieces and greedy decoding yields the same
tokens. Test hook: ``STREAMER_SUMMARIZE_CRASH_AFTER_CHUNK=k`` kills the process (SIGKILL) right
after the state of its k-th finished chunk is saved.

Raises MediaError (cannot open / nothing decodable), InputError (bad resume state or options),
SessionError (the model could not answer).
"""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from streamer.engine.ingest import IngestStats, ingest
from streamer.engine.sampling import SamplingParams
from streamer.engine.session import Answer, FinishReason, Session, SessionConfig
from streamer.engine.snapshot import restore_session
from streamer.errors import MediaError, SessionError
from streamer.media import AudioFrames, MediaSource, SamplingPolicy, VideoFrame, open_media
from streamer.model.fingerprint import checkpoint_fingerprint
from streamer.model.preprocess import mmss
from streamer.summarize.budget import default_budget, tokens_per_second
from streamer.summarize.clock import format_clock
from streamer.summarize.final import final_summary
from streamer.summarize.gaps import GapTracker, describe_gap
from streamer.summarize.options import SummarizeOptions
from streamer.summarize.prefetch import Prefetch
from streamer.summarize.progress import Progress
from streamer.summarize.prompts import asked_sections, fill
from streamer.summarize.result import Gap, Note, SummaryResult
from streamer.summarize.sections import clean_text, parse_sections
from streamer.summarize.state import ResumeState, StateDir, check_resumable, input_fingerprint
from streamer.text import display

if TYPE_CHECKING:
    from streamer.engine.engine import Engine

__all__ = ["summarize_recording", "PUMP_S", "CRASH_ENV"]

PUMP_S = 5.0  # seconds of media between prefill runs (fixed: it shapes the prefill, hence the tokens)
CRASH_ENV = "STREAMER_SUMMARIZE_CRASH_AFTER_CHUNK"  # test hook, see the module docstring
TAIL_S = 1.0  # seconds: a last chunk with less media joins the chunk before it
_TURN_TOKENS = 8  # tokens of chat markers around a question and its answer


def summarize_recording(
    engine: Engine,
    path: str | os.PathLike[str],
    options: SummarizeOptions | None = None,
    *,
    state_dir: StateDir | None = None,
    resume: bool = False,
    progress: Progress | None = None,
) -> SummaryResult:
    """Summarize one recording (see the module docstring); ``state_dir`` None saves no state."""
    options = options or SummarizeOptions()
    source = open_media(path, SamplingPolicy.fixed_rate(options.fps))
    run: _Run | None = None
    try:
        run = _Run(engine, source, os.fspath(path), options, state_dir, progress or Progress())
        run.open(resume)
        run.stream()
        return run.finish()
    finally:
        if run is not None:
            run.progress.end()
            if run.session is not None:
                run.session.close()  # after an error too: a batch must not pile up open sessions
        if run is None or not run.prefetched:
            source.close()  # else the decode thread's Prefetch closes it once the reader stopped


class _Run:
    def __init__(
        self, engine: Engine, source: MediaSource, path: str, options: SummarizeOptions,
        state_dir: StateDir | None, progress: Progress,
    ):  # fmt: skip
        self.engine, self.source, self.path, self.options = engine, source, path, options
        self.state_dir, self.progress = state_dir, progress
        self.budget = options.max_context_tokens or default_budget(
            engine, source.info, options.fps, options.chunk_s
        )
        self.gaps = GapTracker(options.fps, options.gap_s)
        self.timings: dict[str, float] = defaultdict(float)
        loaded = engine.loaded
        model = checkpoint_fingerprint(loaded.path, str(loaded.dtype))
        self.state = ResumeState(input_fingerprint(path), options.fingerprint(), model)
        self.name = display(Path(path).name)  # for messages: undecodable bytes as U+FFFD
        self.prefetched = False  # stream() handed the source to a Prefetch, which closes it
        self.session: Session | None = None
        self.stats = IngestStats()
        self.own_warnings: list[str] = []
        self._t0 = time.perf_counter()
        self._prior_s = 0.0
        self._tokens0 = 0

    # ---- start --------------------------------------------------------------------------------
    def open(self, resume: bool) -> None:
        sd, name = self.state_dir, self.name
        if resume and sd is not None and sd.exists():
            saved = sd.load()
            check_resumable(saved, self.state, sd.path)
            self.session = restore_session(self.engine, sd.snapshot_path(saved))
            self.state = saved
            self.progress.info(
                f"{name}: resuming after chunk {saved.chunks_done} at {format_clock(saved.position_s)}"
            )
        else:
            if sd is not None and sd.exists():
                self.progress.info(
                    f"{name}: discarding the saved state of an earlier run (--resume continues it)"
                )
                sd.remove()
            config = SessionConfig(system_prompt=self.options.prompts.system, max_context_tokens=self.budget)
            self.session = self.engine.open_session(config)
            self.state.text_tokens = (
                len(self.engine.tokenizer.encode(self.options.prompts.system)) + _TURN_TOKENS
            )
        self._prior_s = self.state.timings.get("total_s", 0.0)
        for phase, seconds in self.state.timings.items():
            if phase != "total_s":
                self.timings[phase] += seconds
        self._warn_chunk_size()
        self._tokens0 = self._session_tokens()
        self.progress.begin(name, self.source.info.duration_s, min(self.state.position_s, self._duration()))

    def _warn_chunk_size(self) -> None:
        """A warning when one chunk of media is likely more than the context keeps."""
        info, opts = self.source.info, self.options
        expected = tokens_per_second(info, opts.fps) * opts.chunk_s
        keep = int(self.budget * SessionConfig().evict_to_fraction)
        if expected > keep:
            self.own_warnings.append(
                f"a chunk of {opts.chunk_s:g} s is about {expected:,.0f} tokens, more than the "
                f"{keep:,} the context keeps: notes will see only the end of each chunk (use a smaller "
                "--chunk-minutes or a bigger --max-context-tokens)"
            )
            self.progress.info(f"{self.name}: warning: {self.own_warnings[-1]}")

    # ---- streaming ----------------------------------------------------------------------------
    def stream(self) -> None:
        """Push the media chunk by chunk (decoded ahead in a thread), asking notes at each chunk's end."""
        self.prefetched = True
        with Prefetch(self.source.items(), on_stopped=self.source.close) as items:
            try:
                self._stream(items)
            finally:
                self.timings["decode_s"] += items.busy_s
                self.timings["decode_wait_s"] += items.wait_s

    def _stream(self, items: Prefetch[VideoFrame | AudioFrames]) -> None:
        chunk_s, position = self.options.chunk_s, self.state.position_s
        current: int | None = None
        prev_t: float | None = None  # the previous pushed item's time within the current chunk
        assert self.session is not None
        for item in items:
            gap = self.gaps.observe(item)
            if gap is not None:
                self.progress.info(f"{self.name}: {describe_gap(gap)}")
            if item.t_s < position:
                continue  # already in the restored session
            index = int(item.t_s // chunk_s)
            if current is not None and index != current:
                self._end_chunk(current)
                prev_t = None
            current = index
            if prev_t is not None and int(item.t_s // PUMP_S) != int(prev_t // PUMP_S):
                self._pump(prev_t)
            t0 = time.perf_counter()
            self.session.pause_prefill()  # prefill at fixed media times only: _pump
            ingest(self.session, (item,), stats=self.stats, make_room=self._drain)
            self.timings["ingest_s"] += time.perf_counter() - t0
            prev_t = item.t_s
        if current is not None and not self._tiny_tail(current):
            self._end_chunk(current)

    def _tiny_tail(self, index: int) -> bool:
        """The last chunk holds under a second of media (codec padding): it gets no notes of its own."""
        media_s = self.gaps.covered_until - index * self.options.chunk_s
        return bool(self.state.notes) and media_s < min(TAIL_S, self.options.chunk_s / 2)

    def _chunks_expected(self) -> int | None:
        """Chunks in the recording by its container duration (a tiny tail is no chunk); None if unknown."""
        duration, chunk_s = self.source.info.duration_s, self.options.chunk_s
        if not duration:
            return None
        n = math.ceil(duration / chunk_s)
        return n - 1 if n > 1 and duration - (n - 1) * chunk_s < min(TAIL_S, chunk_s / 2) else n

    def _drain(self) -> None:
        """Prefill everything queued and wait for it (at points fixed by the media, never by timing)."""
        assert self.session is not None
        self.session.resume_prefill()
        if not self.session.wait_idle():
            raise SessionError(self.engine.unavailable() or "the engine stopped")

    def _pump(self, t_s: float) -> None:
        t0 = time.perf_counter()
        self._drain()
        self.timings["ingest_s"] += time.perf_counter() - t0
        self.progress.advance(t_s, self._session_tokens() - self._tokens0)

    def _session_tokens(self) -> int:
        assert self.session is not None
        stats = self.session.stats()
        return stats.context_tokens + stats.evicted_tokens

    def _total_s(self) -> float:
        """Wall seconds of this run plus those before the interruption."""
        return self._prior_s + time.perf_counter() - self._t0

    def _duration(self) -> float:
        """Seconds: the container's duration, or further if media was decoded past it."""
        return max(self.source.info.duration_s or 0.0, self.gaps.covered_until)

    def _end_chunk(self, index: int) -> None:
        assert self.session is not None
        chunk_s = self.options.chunk_s
        start, end = index * chunk_s, min((index + 1) * chunk_s, self._duration())
        question = fill(self.options.prompts.notes, start=mmss(start), end=mmss(end),
                        gaps=_gap_sentence(self.gaps.within(start, end)))  # fmt: skip
        answer = self._ask(self.session, question, self.options.note_tokens, "notes_s")
        note = Note(index, start, end, clean_text(answer.text), len(answer.token_ids))
        state = self.state
        state.notes.append(note)
        state.chunks_done += 1
        state.position_s = (index + 1) * chunk_s
        state.text_tokens += len(self.engine.tokenizer.encode(question)) + note.tokens + _TURN_TOKENS
        if self.state_dir is not None:
            t0 = time.perf_counter()
            state.timings = {**self.timings, "total_s": self._total_s()}
            self.state_dir.save(self.engine, self.session, state)
            self.timings["save_s"] += time.perf_counter() - t0
        self.progress.advance(end, self._session_tokens() - self._tokens0)
        self.progress.chunk(note, self._chunks_expected())
        if os.environ.get(CRASH_ENV) == str(state.chunks_done):
            os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))

    def _ask(self, session: Session, question: str, max_tokens: int, phase: str) -> Answer:
        t0 = time.perf_counter()
        session.resume_prefill()
        stream = session.ask(question, SamplingParams(max_new_tokens=max_tokens))
        session.wait_idle()
        answer = stream.result()
        self.timings[phase] += time.perf_counter() - t0
        if answer.finish_reason not in (FinishReason.STOP, FinishReason.LENGTH):
            raise SessionError(f"the model could not answer: {answer.error or answer.finish_reason.value}")
        return answer

    # ---- end ----------------------------------------------------------------------------------
    def finish(self) -> SummaryResult:
        assert self.session is not None
        end_gap = self.gaps.finish(self.source.info.duration_s)
        if end_gap is not None:
            self.progress.info(f"{self.name}: {describe_gap(end_gap)}")
        notes, gaps = self.state.notes, self.gaps.gaps
        if not notes:
            self.session.close()
            why = "; ".join(self.source.warnings) or "no frame or audio"
            raise MediaError(f"{display(self.path)}: nothing could be decoded ({why})")
        duration = self._duration()
        if 0 < duration - notes[-1].end_s < TAIL_S:  # a tiny tail (codec padding) joins the last chunk
            notes = [*notes[:-1], dataclasses.replace(notes[-1], end_s=duration)]
        context = self.session.stats()
        tokens = {"context": context.context_tokens + context.evicted_tokens, "evicted": context.evicted_tokens,
                  "notes": sum(n.tokens for n in notes), "budget": self.budget}  # fmt: skip
        values = {"duration": format_clock(duration), "gaps": _gap_sentence(gaps)}
        final = final_summary(
            self.engine, self.session, notes, self.options, budget=self.budget,
            text_tokens=self.state.text_tokens, values=values,
            ask=lambda s, q, n: self._ask(s, q, n, "summary_s"),
        )  # fmt: skip
        tokens["summary"] = final.generated
        title = display(Path(self.path).stem)
        sections = parse_sections(final.text, title, asked_sections(self.options.prompts.summary))
        self.timings["total_s"] = self._total_s()
        loaded = self.engine.loaded
        return SummaryResult(
            source=display(self.path), duration_s=duration, summary=sections, notes=list(notes), gaps=list(gaps),
            model={"name": display(Path(loaded.path).name), "path": display(loaded.path), "dtype": str(loaded.dtype).replace("torch.", "")},
            tokens=tokens, timings=dict(self.timings),
            warnings=[display(w) for w in (*self.source.warnings, *map(describe_gap, gaps), *self.own_warnings)],
            summary_levels=final.levels,
        )  # fmt: skip


def _gap_sentence(gaps: list[Gap]) -> str:
    """`` Nothing could be decoded from 01:10 to 01:25; say so.`` (empty without gaps)."""
    if not gaps:
        return ""
    spans = " and ".join(f"from {mmss(g.start_s)} to {mmss(g.end_s)}" for g in gaps)
    return f" Nothing could be decoded {spans}; say so."
