"""Accuracy of a model on held-out demo recordings, through the whole pipeline.

Every question goes through ``streamer ask FILE QUESTION --json`` (file → decoders → engine →
answer, greedy), free-form and with ``--choices``; every timeline through ``streamer summarize
--format json``. The commands run in this process (:func:`streamer.cli.main`), exactly as a
user's shell would run them, minus the interpreter start.

Scores: exact match per question type; for summaries, the share of appearances listed (a line
with the right colour and shape within ±1 s of the true appearance) and the share listed with the
right beeps too, plus lines that match no appearance.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamer import jsonio
from streamer.demo.dataset import materialize, recording_of
from streamer.demo.scene import Recording
from streamer.demo.tasks import (
    CLIP_CHOICES,
    CLIP_QUESTIONS,
    TIMELINE_QUESTION,
    clip_answers,
    colour_at,
    sampled_times,
)
from streamer.model.preprocess import mmss

__all__ = ["Scores", "ask", "evaluate_clips", "evaluate_moments", "evaluate_summaries", "score_summary"]

_LINE = re.compile(r"(\d{2}):(\d{2})\s+(\w+)\s+(\w+),\s*(\d+)\s+(low|high)\s+beeps?")


@dataclass
class Scores:
    """Right answers out of asked, per question type."""

    right: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    asked: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    wrong: list[dict[str, Any]] = field(default_factory=list)  # (file, question, expected, got)

    def add(self, kind: str, ok: bool, **detail: Any) -> None:
        self.asked[kind] += 1
        self.right[kind] += int(ok)
        if not ok:
            self.wrong.append({"kind": kind, **detail})

    def accuracy(self) -> dict[str, float]:
        return {k: self.right[k] / n for k, n in sorted(self.asked.items()) if n}

    def to_json(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy(),
            "right": dict(self.right),
            "asked": dict(self.asked),
            "wrong": self.wrong,
        }


def _cli(argv: list[str]) -> str:
    """Run a ``streamer`` command in process; its stdout (raises on a non-zero exit)."""
    from streamer.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    if code != 0:
        raise RuntimeError(f"streamer {' '.join(argv[:1])} failed ({code}): {err.getvalue().strip()}")
    return out.getvalue()


def ask(
    model: Path | None, path: Path, question: str, choices: tuple[str, ...] = (), threads: int = 1
) -> str:
    """``streamer ask PATH QUESTION --json`` (greedy); the answer text, stripped."""
    argv = ["ask", str(path), question, "--json", "--max-new-tokens", "16", "--threads", str(threads)]
    argv += ["--model", str(model)] if model is not None else []
    argv += ["--choices", ",".join(choices)] if choices else []
    return jsonio.loads(_cli(argv))["answer"].strip()


def evaluate_clips(model: Path | None, seeds: list[int], cache: Path, *, choices: bool = False,
                   threads: int = 1) -> Scores:  # fmt: skip
    """The five clip questions on each clip of ``seeds`` (free-form, or with ``--choices``)."""
    scores = Scores()
    for seed in seeds:
        spec = {"kind": "clip", "seed": seed}
        path, answers = materialize(spec, cache), clip_answers(recording_of(spec))
        for kind, question in CLIP_QUESTIONS.items():
            got = ask(model, path, question, CLIP_CHOICES[kind] if choices else (), threads)
            scores.add(
                kind, got == answers[kind], file=path.name, question=question, expected=answers[kind], got=got
            )
    return scores


def evaluate_moments(model: Path | None, specs: list[dict[str, Any]], cache: Path, *, per_recording: int = 4,
                     threads: int = 1) -> Scores:  # fmt: skip
    """ "What colour was the shape at MM:SS?" at ``per_recording`` evenly spread frame times."""
    scores = Scores()
    for spec in specs:
        rec, path = recording_of(spec), materialize(spec, cache)
        times = sampled_times(rec)
        for t in times[1 :: max(1, len(times) // per_recording)][:per_recording]:
            question, expected = TIMELINE_QUESTION.format(time=mmss(t)), colour_at(rec, t)
            got = ask(model, path, question, (), threads)
            scores.add(
                "colour at", got == expected, file=path.name, question=question, expected=expected, got=got
            )
    return scores


def score_summary(rec: Recording, text: str) -> dict[str, int]:
    """Appearances listed in ``text`` (colour and shape right, time within ±1 s), with beeps right
    too, and listed lines that match no appearance."""
    lines = [m.groups() for m in _LINE.finditer(text)]
    found = exact = 0
    used: set[int] = set()
    for a in rec.appearances:
        for i, (mm, ss, colour, shape, count, tone) in enumerate(lines):
            t = int(mm) * 60 + int(ss)
            if i not in used and colour == a.colour and shape == a.shape and abs(t - a.t0_s) <= 1.0 + 1e-6:
                used.add(i)
                found += 1
                exact += int(int(count) == a.beeps.count and tone == a.beeps.tone)
                break
    return {
        "appearances": len(rec.appearances),
        "listed": found,
        "exact": exact,
        "extra": len(lines) - len(used),
    }


def evaluate_summaries(model: Path | None, specs: list[dict[str, Any]], cache: Path, *, chunk_minutes: float = 0.25,
                       threads: int = 1) -> dict[str, Any]:  # fmt: skip
    """``streamer summarize --format json`` on each timeline; appearances listed in the summary."""
    totals: dict[str, int] = defaultdict(int)
    runs = []
    for spec in specs:
        rec, path = recording_of(spec), materialize(spec, cache)
        argv = ["summarize", str(path), "--format", "json", "--quiet", "--chunk-minutes", str(chunk_minutes),
                "--threads", str(threads)]  # fmt: skip
        argv += ["--model", str(model)] if model is not None else []
        result = jsonio.loads(_cli(argv))
        score = score_summary(rec, result["summary"]["text"])
        for k, v in score.items():
            totals[k] += v
        runs.append({"file": path.name, **score, "summary": result["summary"]["text"]})
    n = max(totals["appearances"], 1)
    return {"listed": totals["listed"] / n, "exact": totals["exact"] / n, "extra_lines": totals["extra"],
            "appearances": totals["appearances"], "runs": runs}  # fmt: skip
