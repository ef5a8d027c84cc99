"""Demo recordings on disk and fine-tuning data in the JSONL format of :mod:`streamer.finetune.data`.

The kinds of lines:

- **clip**: one clip, the five questions in a seeded random order (each answer is trained; the
  first is asked right after the media, as ``streamer ask`` does);
- **listen** / **watch** / **glance** / **peek**: part of a clip (its sound alone; its pictures
  alone; its first second or first three seconds of pictures) with the questions it answers: the
  same skills for a third to a tenth of the tokens;
- **notes**: a timeline as ``streamer summarize`` runs it: the default system prompt, the notes
  question at the end of every chunk (``at_s``), then the summary question;
- **moments**: a timeline, then a few "What colour was the shape at MM:SS?" questions.

Media is written with :func:`streamer.demo.encode.write_recording`; a recording is named after
its kind and seed, so :func:`materialize` (the ``generate`` field of a JSONL line) and
:func:`write_dataset` share files.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from streamer import jsonio
from streamer.demo.encode import write_recording
from streamer.demo.scene import COLOURS, EXTRA_COLOURS, Recording, sample_clip, sample_timeline
from streamer.demo.tasks import (
    CLIP_QUESTIONS,
    ONSET_QUESTION,
    SYSTEM_PROMPT,
    TIMELINE_QUESTION,
    clip_answers,
    colour_at,
    first_seen,
    gone_at,
    notes_answer,
    notes_events,
    notes_prompt,
    sampled_times,
    summary_answer,
    summary_prompt,
)
from streamer.errors import InputError
from streamer.model.preprocess import mmss
from streamer.summarize.clock import format_clock

__all__ = [
    "DatasetPlan",
    "recording_of",
    "materialize",
    "write_dataset",
    "clip_line",
    "view_line",
    "notes_line",
    "moments_line",
    "chunk_bounds",
    "onset_windows",
    "digest_line",
]


@dataclass(frozen=True)
class DatasetPlan:
    """How many lines of each kind, from which seeds."""

    clips: int = 0  # clip lines
    listen: int = 0  # sound-only clip lines (the first `listen` clip seeds)
    watch: int = 0  # picture-only clip lines (the first `watch` clip seeds)
    glance: int = 0  # the first second of pictures: colour and shape (the first `glance` clip seeds)
    peek: int = 0  # the first three seconds of pictures: motion and shape
    glance_seed: int | None = None  # glances from their own clip seeds, each clip cut to its first second
    notes: int = 0  # timeline lines with notes and a summary
    moments: int = 0  # timeline lines with "colour at" questions
    onsets: int = 0  # timelines whose every appearance gives a short "When did the shape appear?" window
    onset_notes: int = 0  # timelines (the first of the onsets' seeds) whose appearances give notes windows
    # The first clip seed; timelines use seeds from (timeline_seed or seed) + 1e6 (notes), + 2e6
    # (moments), + 3e6 (onsets), + 4e6 (digests).
    seed: int = 0
    timeline_seed: int | None = None
    timeline_s: tuple[float, float] = (30.0, 120.0)  # duration range of timelines, seconds
    digests: int = 0  # text-only lines: a long timeline's true notes, then its summary
    long_timeline_s: tuple[float, float] = (
        30.0,
        120.0,
    )  # duration range of the onsets' and digests' timelines
    chunk_s: tuple[float, ...] = (15.0,)  # chunk lengths drawn for notes lines, seconds
    questions_per_moments: int = 4  # "colour at" questions per moments line
    early: float = 0.0  # share of clip lines that also ask questions while the clip plays
    video_fps: int | None = None  # encode every recording at this frame rate (None: the drawn one)
    timeline_fps: int | None = None  # encode timelines at this rate instead (None: ``video_fps``)


def recording_of(spec: dict[str, Any]) -> Recording:
    """The recording of a ``generate`` spec: ``{"kind": "clip"|"timeline", "seed": N}``; clips take a
    ``"colour"`` to force, timelines ``"min_s"``/``"max_s"`` (default 30-120 s); ``"fps"`` encodes
    the video at that rate instead of the drawn one (training media: at 5 fps a 1 fps sampler takes
    the same frames, for a quarter of the encoding); ``"first_s"`` keeps only a clip's first seconds."""
    rec = _recording_of(spec)
    fps = spec.get("fps")
    if fps is None:
        return rec
    if not isinstance(fps, int) or isinstance(fps, bool) or not 1 <= fps <= 60:
        raise InputError(f'generate: "fps" must be an integer in [1, 60], got {fps!r}')
    return replace(rec, fps=fps)


def _recording_of(spec: dict[str, Any]) -> Recording:
    kind, seed = spec.get("kind"), spec.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise InputError(f'generate: "seed" must be an integer >= 0, got {seed!r}')
    if kind == "clip":
        colour = spec.get("colour")
        if colour is not None and colour not in COLOURS and colour not in EXTRA_COLOURS:
            raise InputError(f"generate: unknown colour {colour!r}")
        clip = sample_clip(seed, colour=colour)
        first = spec.get("first_s")
        if first is None:
            return clip
        if not isinstance(first, int | float) or isinstance(first, bool) or not 0 < first <= clip.duration_s:
            raise InputError(f'generate: "first_s" must be in (0, {clip.duration_s:g}], got {first!r}')
        return _cut(clip, float(first))
    if kind == "timeline":
        timeline = sample_timeline(
            seed, min_s=float(spec.get("min_s", 30.0)), max_s=float(spec.get("max_s", 120.0))
        )
        if "from_s" not in spec and "to_s" not in spec:
            return timeline
        start, end = spec.get("from_s", 0), spec.get("to_s", timeline.duration_s)
        if (not all(isinstance(x, int | float) and not isinstance(x, bool) for x in (start, end))
                or not 0 <= start < end <= timeline.duration_s):  # fmt: skip
            raise InputError(
                f'generate: "from_s" < "to_s" must lie in [0, {timeline.duration_s:g}], got {start!r}, {end!r}'
            )
        window = _window(timeline, float(start), float(end))
        if window.container in ("mkv", "avi"):
            # A few seconds at 1 fps: the AVI writer's MPEG-4 drops the second frame, and Matroska
            # with Opus starts 13 ms after the first picture (which decoders before 4b75daa read as
            # every frame 13 ms early, losing each to a 1 fps sampler).
            window = replace(window, container="mp4", video_codec="libx264", audio_codec="aac")
        return window
    raise InputError(f'generate: "kind" must be "clip" or "timeline", got {kind!r}')


def _cut(rec: Recording, end_s: float) -> Recording:
    """``rec``'s first ``end_s`` seconds: the same pictures, the beeps that start before the end (so
    every answer of :func:`streamer.demo.tasks.clip_answers` is right for what the cut shows)."""
    return _window(rec, 0.0, end_s)


def _window(rec: Recording, start_s: float, end_s: float) -> Recording:
    """``rec`` from ``start_s`` to ``end_s``, as a recording of its own that starts at 0 (times shifted
    by ``-start_s``; a training line gives ``"start_s"`` to put them back): the appearances it shows,
    with the beeps that start inside it."""
    appearances = []
    for a in rec.appearances:
        if a.t1_s <= start_s or a.t0_s >= end_s:
            continue
        kept = [i for i, t in enumerate(a.beeps.starts_s) if start_s <= t < end_s]
        beeps = replace(a.beeps, starts_s=tuple(a.beeps.starts_s[i] - start_s for i in kept),
                        lengths_s=tuple(a.beeps.lengths_s[i] for i in kept))  # fmt: skip
        appearances.append(replace(a, beeps=beeps, t0_s=a.t0_s - start_s, t1_s=a.t1_s - start_s))
    return replace(rec, duration_s=end_s - start_s, appearances=tuple(appearances))


def _name(spec: dict[str, Any], rec: Recording) -> str:
    if rec.kind == "clip":
        extra = f"-{spec['colour']}" if spec.get("colour") else ""
        extra += f"-first{spec['first_s']:g}" if spec.get("first_s") is not None else ""
    else:
        extra = f"-{spec.get('min_s', 30.0):g}-{spec.get('max_s', 120.0):g}"
        if "from_s" in spec or "to_s" in spec:
            extra += f"-from{spec.get('from_s', 0):g}-to{spec.get('to_s', rec.duration_s):g}"
    if spec.get("fps") is not None:
        extra += f"-{spec['fps']}fps"
    return f"{rec.kind}{extra}-{rec.seed:07d}{rec.suffix}"


def materialize(spec: dict[str, Any], cache: Path) -> Path:
    """The media file of a ``generate`` spec in ``cache`` (written on first use)."""
    rec = recording_of(spec)
    path = Path(cache) / _name(spec, rec)
    if not path.is_file():
        write_recording(rec, path)
    return path


def chunk_bounds(duration_s: float, chunk_s: float) -> list[tuple[float, float]]:
    """(start, end) of each chunk ``streamer summarize`` asks notes for (a < 1 s tail gets none)."""
    n = max(1, math.ceil(duration_s / chunk_s))
    if n > 1 and duration_s - (n - 1) * chunk_s < min(1.0, chunk_s / 2):
        n -= 1
    return [(k * chunk_s, min((k + 1) * chunk_s, duration_s)) for k in range(n)]


def clip_line(rec: Recording, media: str, rng: np.random.Generator, early: float = 0.0) -> dict[str, Any]:
    """The five questions after the clip, in random order; with probability ``early``, some are
    also asked while it plays, as soon as the answer is known (more answers per forward pass)."""
    answers = clip_answers(rec)
    (a,) = rec.appearances
    asked_at = {
        "colour": 1.0,
        "shape": 2.0,
        "motion": 3.0,
        "tone": float(math.ceil(a.beeps.starts_s[0] + a.beeps.lengths_s[0])),
    }
    turns = []
    if rng.random() < early:
        picks = [k for k in asked_at if rng.random() < 0.7 and asked_at[k] < rec.duration_s - 1]
        for k in sorted(picks, key=lambda k: asked_at[k]):
            turns.append({"at_s": asked_at[k], "prompt": CLIP_QUESTIONS[k], "answer": answers[k]})
    keys = list(rng.permutation(list(CLIP_QUESTIONS)))
    turns += [{"prompt": CLIP_QUESTIONS[k], "answer": answers[k]} for k in keys]
    return {"media": media, "turns": turns}


_VIEWS: dict[str, tuple[list[str], float | None]] = {  # kind → (questions, asked at this media time)
    "listen": (["beeps", "tone"], None),
    "watch": (["colour", "shape", "motion"], None),
    "glance": (["colour", "shape"], 1.0),
    "peek": (["motion", "shape"], 3.0),
}


def view_line(rec: Recording, media: str, rng: np.random.Generator, kind: str) -> dict[str, Any]:
    """Part of a clip, in random question order: its sound alone with the beeps and tone questions
    (``listen``); its pictures alone with colour, shape and motion (``watch``); only its first
    second of pictures, colour and shape (``glance``); its first three, motion and shape (``peek``).
    The same skills for a fraction of the tokens (a one-frame glance is ~80)."""
    answers = clip_answers(rec)
    keys, at = _VIEWS[kind]
    when = {} if at is None else {"at_s": at}
    turns = [
        {**when, "prompt": CLIP_QUESTIONS[k], "answer": answers[k]} for k in rng.permutation(keys).tolist()
    ]
    return {"media": media, "video" if kind == "listen" else "audio": False, "turns": turns}


def notes_line(rec: Recording, media: str, chunk_s: float) -> dict[str, Any]:
    """The notes at the end of each chunk and the summary, as `streamer summarize` asks them."""
    return {"media": media, "system": SYSTEM_PROMPT, "turns": _notes_turns(rec, chunk_s, media=True)}


def digest_line(rec: Recording, chunk_s: float) -> dict[str, Any]:
    """Text only: the recording's true notes as earlier answers (no loss), then the summary. It
    teaches the summary to list every noted line of a long recording, for a few hundred tokens
    instead of the recording's thousands (a summary copies the notes, which are text)."""
    return {"system": SYSTEM_PROMPT, "turns": _notes_turns(rec, chunk_s, media=False)}


def _notes_turns(rec: Recording, chunk_s: float, *, media: bool) -> list[dict[str, Any]]:
    chunks = chunk_bounds(rec.duration_s, chunk_s)
    turns, events = [], []
    for i, (start, end) in enumerate(chunks):
        last = i == len(chunks) - 1
        lines = notes_events(rec, start, math.inf if last else end)
        events += lines
        turn: dict[str, Any] = {"prompt": notes_prompt(start, end), "answer": notes_answer(lines)}
        if not media:
            turn["train"] = False
        turns.append(turn if last or not media else {"at_s": end, **turn})
    turns.append({"prompt": summary_prompt(format_clock(rec.duration_s)), "answer": summary_answer(events)})
    return turns


def moments_line(rec: Recording, media: str, rng: np.random.Generator, count: int) -> dict[str, Any]:
    times = sampled_times(rec)
    picks = sorted(rng.choice(len(times), size=min(count, len(times)), replace=False).tolist())
    turns = [
        {"prompt": TIMELINE_QUESTION.format(time=mmss(times[i])), "answer": colour_at(rec, times[i])}
        for i in rng.permutation(picks).tolist()
    ]
    return {"media": media, "turns": turns}


def onset_windows(
    rec: Recording, rng: np.random.Generator, notes: bool
) -> list[tuple[str, int, int, dict[str, Any]]]:
    """Short windows of a 1 fps timeline around each appearance: ``("onset", start, end, line)`` asks
    "When did the shape appear?" over one to three blank seconds and the shape's first one or two
    (pictures only); with ``notes``, ``("notes", ...)`` also asks the notes question over the whole
    appearance, from a blank second before it to one or two after it. ``line`` lacks its media.

    Each window is cut from the timeline at whole seconds and trained at its own times
    (``"start_s"``), so the answer is a time anywhere in the recording: the notes' times copied
    from the frames' timestamps, in a few hundred tokens instead of a whole chunk's thousand.
    """
    out: list[tuple[str, int, int, dict[str, Any]]] = []
    gone = 0.0  # the previous appearance's first blank sampled frame
    for a in rec.appearances:
        seen = first_seen(rec, a)
        if seen is None:
            continue
        onset, last = round(seen), math.floor(rec.duration_s)
        start = int(rng.integers(max(round(gone), onset - 3), onset))  # at least one blank second
        end = min(onset + int(rng.integers(1, 3)), last)
        out.append(("onset", start, end, {"audio": False, "prompt": ONSET_QUESTION, "answer": mmss(onset)}))
        first = max(round(gone) + 1, onset - 3)  # the previous appearance's end stays outside
        gone = gone_at(rec, a)
        if notes and first < onset:
            start = int(rng.integers(first, onset))
            end = min(round(gone) + int(rng.integers(1, 3)), last)
            lines = notes_events(rec, start, end)
            answer = {
                "system": SYSTEM_PROMPT,
                "prompt": notes_prompt(start, end),
                "answer": notes_answer(lines),
            }
            if len(lines) == 1:
                out.append(("notes", start, end, answer))
    return out


def _write(job: tuple[dict[str, Any], str]) -> str:
    spec, cache = job
    return str(materialize(spec, Path(cache)))


def write_dataset(out_dir: str | os.PathLike[str], plan: DatasetPlan, *, jobs: int = 1,
                  name: str = "train.jsonl") -> Path:  # fmt: skip
    """Write the plan's media under ``out_dir/media`` and its lines into ``out_dir/name``."""
    out = Path(out_dir)
    media_dir = out / "media"
    media_dir.mkdir(parents=True, exist_ok=True)
    lo, hi = plan.timeline_s
    specs: list[tuple[str, dict[str, Any]]] = []
    rate = {} if plan.video_fps is None else {"fps": plan.video_fps}
    specs += [("clip", {"kind": "clip", "seed": plan.seed + i, **rate}) for i in range(plan.clips)]
    specs += [("listen", {"kind": "clip", "seed": plan.seed + i, **rate}) for i in range(plan.listen)]
    specs += [("watch", {"kind": "clip", "seed": plan.seed + i, **rate}) for i in range(plan.watch)]
    if plan.glance_seed is None:
        specs += [("glance", {"kind": "clip", "seed": plan.seed + i, **rate}) for i in range(plan.glance)]
    else:  # a one-second file is a tenth of the clip's encoding, so many more distinct clips are affordable
        specs += [("glance", {"kind": "clip", "seed": plan.glance_seed + i, "first_s": 1.0, **rate})
                  for i in range(plan.glance)]  # fmt: skip
    specs += [("peek", {"kind": "clip", "seed": plan.seed + i, **rate}) for i in range(plan.peek)]
    first = plan.seed if plan.timeline_seed is None else plan.timeline_seed
    timeline_rate = rate if plan.timeline_fps is None else {"fps": plan.timeline_fps}
    base = first + 1_000_000
    specs += [("notes", {"kind": "timeline", "seed": base + i, "min_s": lo, "max_s": hi, **timeline_rate})
              for i in range(plan.notes)]  # fmt: skip
    base = first + 2_000_000
    specs += [("moments", {"kind": "timeline", "seed": base + i, "min_s": lo, "max_s": hi, **timeline_rate})
              for i in range(plan.moments)]  # fmt: skip
    base = first + 3_000_000
    windows: dict[int, dict[str, Any]] = {}  # spec index -> its line, less the media
    window_rng = np.random.default_rng([plan.seed, 5])
    for i in range(plan.onsets):
        spec = {"kind": "timeline", "seed": base + i, "min_s": plan.long_timeline_s[0],
                "max_s": plan.long_timeline_s[1], **timeline_rate}  # fmt: skip
        for kind, start, end, line in onset_windows(recording_of(spec), window_rng, i < plan.onset_notes):
            windows[len(specs)] = {"start_s": start, **line}
            specs.append((kind, {**spec, "from_s": start, "to_s": end}))
    digests = [
        recording_of({"kind": "timeline", "seed": first + 4_000_000 + i, "min_s": plan.long_timeline_s[0],
                      "max_s": plan.long_timeline_s[1]})
        for i in range(plan.digests)
    ]  # fmt: skip
    unique = list({jsonio.dumps(s, sort_keys=True): s for _, s in specs}.values())
    made = dict(
        zip(
            (jsonio.dumps(s, sort_keys=True) for s in unique),
            _materialize_all(unique, media_dir, jobs),
            strict=True,
        )
    )
    paths = [made[jsonio.dumps(s, sort_keys=True)] for _, s in specs]
    rng = np.random.default_rng([plan.seed, 4])
    lines = []
    for index, ((kind, spec), path) in enumerate(zip(specs, paths, strict=True)):
        media = os.path.relpath(path, out)
        if index in windows:  # its line is made already
            lines.append({"media": media, **windows[index]})
            continue
        rec = recording_of(spec)
        if kind == "clip":
            lines.append(clip_line(rec, media, rng, plan.early))
        elif kind in ("listen", "watch", "glance", "peek"):
            lines.append(view_line(rec, media, rng, kind))
        elif kind == "notes":
            lines.append(notes_line(rec, media, float(rng.choice(plan.chunk_s))))
        else:
            lines.append(moments_line(rec, media, rng, plan.questions_per_moments))
    lines += [digest_line(rec, float(window_rng.choice(plan.chunk_s))) for rec in digests]
    order = rng.permutation(len(lines)).tolist()
    target = out / name
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text("".join(jsonio.dumps(lines[i]) + "\n" for i in order), encoding="utf-8")
    tmp.replace(target)
    return target


def _materialize_all(specs: Iterable[dict[str, Any]], cache: Path, jobs: int) -> list[Path]:
    specs = list(specs)
    if jobs <= 1:
        return [materialize(s, cache) for s in specs]
    with ProcessPoolExecutor(jobs) as pool:
        return [Path(p) for p in pool.map(_write, [(s, str(cache)) for s in specs], chunksize=8)]
