"""The demo task's questions and their right answers, computed from a :class:`Recording`.

Clips: five questions, asked exactly like this, with one-word answers (:data:`CLIP_QUESTIONS`,
:data:`CLIP_CHOICES`). Timelines: "What colour was the shape at MM:SS?" (a colour or "none"),
timestamped notes per chunk and a summary, in the prompts ``streamer summarize`` asks by default
(:mod:`streamer.summarize.prompts`), so the demo model summarizes with no special options.

An appearance is dated by the first sampled frame that shows it (``mm:ss`` of that frame, as the
model sees it). A chunk's notes list the appearances that ended in it (their first blank sampled
frame falls in the chunk), so every beep of a noted shape has already been heard; one still on
screen when the chunk ends is noted with the next chunk.
"""

from __future__ import annotations

import math

from streamer.demo.scene import COLOURS, MOTIONS, SHAPES, TONES, Appearance, Recording
from streamer.model.preprocess import mmss
from streamer.summarize.prompts import DEFAULT_NOTES, DEFAULT_SUMMARY, DEFAULT_SYSTEM, fill

__all__ = [
    "CLIP_QUESTIONS",
    "CLIP_CHOICES",
    "COUNT_WORDS",
    "TIMELINE_QUESTION",
    "NOTES_NONE",
    "SUMMARY_OVERVIEW",
    "clip_answers",
    "sampled_times",
    "colour_at",
    "first_seen",
    "gone_at",
    "ONSET_QUESTION",
    "event_line",
    "notes_events",
    "notes_answer",
    "notes_prompt",
    "summary_answer",
    "summary_prompt",
    "SYSTEM_PROMPT",
]

COUNT_WORDS = ("one", "two", "three", "four")
CLIP_QUESTIONS: dict[str, str] = {
    "colour": "What colour is the shape?",
    "shape": "What shape is it?",
    "motion": "Which way is it moving?",
    "beeps": "How many beeps?",
    "tone": "Is the tone high or low?",
}
CLIP_CHOICES: dict[str, tuple[str, ...]] = {
    "colour": tuple(COLOURS),
    "shape": SHAPES,
    "motion": MOTIONS,
    "beeps": COUNT_WORDS,
    "tone": tuple(sorted(TONES)),
}
TIMELINE_QUESTION = "What colour was the shape at {time}?"
ONSET_QUESTION = "When did the shape appear?"  # answered mm:ss: drills the notes' times
NOTES_NONE = "Nothing new."
SUMMARY_OVERVIEW = "Shapes appeared one at a time, each with its beeps."
SYSTEM_PROMPT = DEFAULT_SYSTEM  # what `streamer summarize` opens its sessions with
_TOLERANCE_S = 1e-3  # the fixed-rate sampler's: a frame this close before a tick counts as at it


def clip_answers(rec: Recording) -> dict[str, str]:
    """The right answer to each of :data:`CLIP_QUESTIONS` (by key) for a clip."""
    (a,) = rec.appearances
    return {
        "colour": a.colour,
        "shape": a.shape,
        "motion": a.motion,
        "beeps": COUNT_WORDS[a.beeps.count - 1],
        "tone": a.beeps.tone,
    }


def sampled_times(rec: Recording, fps: float = 1.0) -> list[float]:
    """Times of the frames a fixed-rate ``fps`` sampler takes (the first frame at or after each tick)."""
    frames = rec.num_frames
    out: list[float] = []
    k = 0
    while k / fps < rec.duration_s:
        i = math.ceil((k / fps - _TOLERANCE_S) * rec.fps)
        if i >= frames:
            break
        t = i / rec.fps
        if not out or t > out[-1]:
            out.append(t)
        k += 1
    return out


def colour_at(rec: Recording, t_s: float) -> str:
    """What "What colour was the shape at mm:ss?" should answer for the sampled frame at ``t_s``."""
    a = rec.appearance_at(t_s)
    return a.colour if a is not None else "none"


def first_seen(rec: Recording, a: Appearance, fps: float = 1.0) -> float | None:
    """Time of the first sampled frame showing ``a`` (None when no sampled frame does)."""
    return next((t for t in sampled_times(rec, fps) if a.visible(t)), None)


def gone_at(rec: Recording, a: Appearance, fps: float = 1.0) -> float:
    """Time of the first sampled frame after ``a`` (the recording's end when none)."""
    return next((t for t in sampled_times(rec, fps) if t >= a.t1_s), rec.duration_s)


def event_line(a: Appearance, seen_s: float) -> str:
    """``mm:ss colour shape, N low|high beep(s)``."""
    n = a.beeps.count
    return f"{mmss(seen_s)} {a.colour} {a.shape}, {n} {a.beeps.tone} beep{'s' if n > 1 else ''}"


def notes_events(rec: Recording, start_s: float, end_s: float, fps: float = 1.0) -> list[str]:
    """Event lines of the appearances that end in ``[start_s, end_s)`` (see the module docstring)."""
    lines = []
    for a in rec.appearances:
        seen = first_seen(rec, a, fps)
        gone = gone_at(rec, a, fps)
        last_chunk = end_s >= rec.duration_s
        if seen is not None and (start_s <= gone < end_s or (last_chunk and gone >= start_s)):
            lines.append(event_line(a, seen))
    return lines


def notes_answer(lines: list[str]) -> str:
    return "\n".join(lines) if lines else NOTES_NONE


def notes_prompt(start_s: float, end_s: float) -> str:
    """The notes question ``streamer summarize`` asks at a chunk's end (no gaps)."""
    return fill(DEFAULT_NOTES, start=mmss(start_s), end=mmss(end_s), gaps="")


def summary_prompt(duration: str) -> str:
    """The summary question ``streamer summarize`` asks (``duration`` as it formats it: ``mm:ss``)."""
    return fill(DEFAULT_SUMMARY, duration=duration, gaps="")


def summary_answer(lines: list[str]) -> str:
    """``Overview: ...`` then ``Key points:`` with one ``- `` line per appearance."""
    body = "\n".join(f"- {line}" for line in lines) if lines else "- No shapes appeared."
    return f"Overview: {SUMMARY_OVERVIEW}\nKey points:\n{body}"
