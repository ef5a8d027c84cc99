"""Fine-tuning data: the JSONL format, and each line → the exact layout a session serves.

One JSON object per line (blank lines and lines starting with ``#`` are skipped)::

    {"media": "clips/a.mp4", "prompt": "What colour is the shape?", "answer": "red"}
    {"media": "clips/a.mp4", "turns": [{"prompt": "How many beeps?", "answer": "two"},
                                        {"prompt": "What shape is it?", "answer": "circle"}]}
    {"media": "talk.mkv", "system": "You take notes.", "fps": 1.0,
     "turns": [{"at_s": 15, "prompt": "Notes on 00:00-00:15?", "answer": "...", "train": false},
               {"prompt": "Summarize.", "answer": "..."}]}
    {"generate": {"kind": "clip", "seed": 7}, "prompt": "Is the tone high or low?", "answer": "low"}
    {"prompt": "Say hi.", "answer": "hi"}

- ``media``: a file path (relative paths are relative to the JSONL file), or ``generate``: a demo
  recording drawn by :mod:`streamer.demo` from ``{"kind": "clip"|"timeline", "seed": N}`` (options:
  :func:`streamer.demo.dataset.recording_of`) and written once into the run's media cache. No
  media: a text-only conversation. ``"video": false`` or ``"audio": false`` leaves that stream of
  the recording out (as if the file had none).
- ``start_s`` (default 0): where the media starts in the recording it was cut from. Every
  timestamp (and every ``at_s``) is in the recording's time, so a segment cut from 01:05 of a long
  meeting is trained with the times a session sees there.
- ``fps`` (default 1), ``frame_soft_tokens`` (70), ``audio_segment_s`` (1.0): sampling settings,
  the engine's defaults unless given; ``system``: the session's system prompt (default none).
- ``prompt``/``answer``, or ``turns``: questions asked in order. A turn's ``at_s`` (default: after
  all media) is the media time it is asked at: items before it are pushed first, as a live session
  (and ``streamer summarize``) does. ``train`` (default true): whether its answer carries loss.

The layout is built with the engine's own :class:`~streamer.engine.timeline.Timeline` and
:class:`~streamer.engine.sequence.SequenceBuilder` (as :func:`streamer.engine.conversation.build_example`
does for one question), so what is trained is what is served. Labels: the answer tokens and the
token that closes the model's turn; every other token is ignored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from streamer import jsonio
from streamer.engine.conversation import IGNORE_INDEX
from streamer.engine.protocol import SamplingParams, check_text
from streamer.engine.sequence import PendingUnit, SequenceBuilder
from streamer.engine.timeline import Item, QuestionItem, Timeline
from streamer.errors import InputError, MediaError
from streamer.media.types import AudioFrames, VideoFrame
from streamer.model.config import ModelConfig
from streamer.model.inputs import MM_TEXT, Layout
from streamer.model.preprocess import SOFT_TOKEN_BUDGETS
from streamer.model.tokenizer import Tokenizer

__all__ = [
    "Turn",
    "ExampleSpec",
    "Example",
    "read_jsonl",
    "parse_example",
    "build_conversation",
    "load_example",
    "MediaResolver",
]

MediaResolver = Callable[[dict[str, Any]], Path]  # a "generate" spec → a media file
_KEYS = {"media", "generate", "video", "audio", "system", "fps", "frame_soft_tokens", "audio_segment_s", "prompt",
         "answer", "turns", "start_s"}  # fmt: skip
_TURN_KEYS = {"prompt", "answer", "at_s", "train"}


@dataclass(frozen=True)
class Turn:
    """One question and its answer."""

    prompt: str
    answer: str
    at_s: float | None = None  # media time it is asked at (None: after all media), seconds
    train: bool = True  # whether the answer carries loss


@dataclass(frozen=True)
class ExampleSpec:
    """One JSONL line, validated."""

    turns: tuple[Turn, ...]
    media: Path | None = None  # a media file
    generate: dict[str, Any] | None = None  # or a demo recording to draw (streamer.demo)
    video: bool = True  # feed the recording's pictures (false: as if it had no video stream)
    audio: bool = True  # feed its sound (false: as if it had no audio stream)
    start_s: float = 0.0  # the media's start in the recording it was cut from, seconds
    system: str | None = None  # the session's system prompt
    fps: float = 1.0  # video frames sampled per second
    frame_soft_tokens: int = 70  # soft tokens per frame
    audio_segment_s: float = 1.0  # seconds per audio segment
    line: int = 0  # 1-based line in the JSONL file (for messages)


@dataclass
class Example:
    """A built example: the layout the engine would serve, one label per token."""

    layout: Layout
    labels: list[int]  # token id to predict at each position, or IGNORE_INDEX
    spec: ExampleSpec
    trained_tokens: int = field(init=False)  # tokens with a label

    def __post_init__(self) -> None:
        self.trained_tokens = sum(1 for v in self.labels if v != IGNORE_INDEX)

    def __len__(self) -> int:
        return len(self.layout)


def _fail(where: str, message: str) -> InputError:
    return InputError(f"{where}: {message}")


def _number(obj: dict[str, Any], key: str, where: str, default: float, low: float, high: float) -> float:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(where, f'"{key}" must be a number, got {value!r}')
    if not low < value <= high:
        raise _fail(where, f'"{key}" must be in ({low:g}, {high:g}], got {value!r}')
    return float(value)


def _text(obj: dict[str, Any], key: str, where: str, empty_ok: bool) -> str:
    if key not in obj:
        raise _fail(where, f'"{key}" is missing')
    try:
        return check_text(obj[key], f'"{key}"', empty_ok=empty_ok)
    except InputError as exc:
        raise _fail(where, str(exc)) from None


def _turn(obj: object, where: str) -> Turn:
    if not isinstance(obj, dict):
        raise _fail(where, "a turn must be an object with prompt and answer")
    unknown = sorted(set(obj) - _TURN_KEYS)
    if unknown:
        raise _fail(
            where, f"unknown turn field(s) {', '.join(unknown)} (known: {', '.join(sorted(_TURN_KEYS))})"
        )
    at = obj.get("at_s")
    if at is not None:
        at = _number(obj, "at_s", where, 0.0, -1e-9, 1e7)
    train = obj.get("train", True)
    if not isinstance(train, bool):
        raise _fail(where, f'"train" must be true or false, got {train!r}')
    return Turn(_text(obj, "prompt", where, False), _text(obj, "answer", where, True), at, train)


def parse_example(obj: object, base: Path, line: int = 0) -> ExampleSpec:
    """Validate one decoded JSONL object (see the module docstring); InputError names the problem."""
    where = f"line {line}" if line else "example"
    if not isinstance(obj, dict):
        raise _fail(where, "each line must be a JSON object")
    unknown = sorted(set(obj) - _KEYS)
    if unknown:
        raise _fail(where, f"unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(_KEYS))})")
    if "turns" in obj:
        if "prompt" in obj or "answer" in obj:
            raise _fail(where, 'give either "prompt"/"answer" or "turns", not both')
        raw = obj["turns"]
        if not isinstance(raw, list) or not raw:
            raise _fail(where, '"turns" must be a non-empty list')
        turns = tuple(_turn(t, f"{where}, turn {i + 1}") for i, t in enumerate(raw))
    else:
        turns = (_turn({k: obj[k] for k in ("prompt", "answer") if k in obj}, where),)
    times = [t.at_s for t in turns if t.at_s is not None]
    if times != sorted(times):
        raise _fail(where, '"at_s" of the turns must not decrease')
    if any(a.at_s is None and b.at_s is not None for a, b in zip(turns, turns[1:], strict=False)):
        raise _fail(where, 'a turn with "at_s" cannot follow one asked after all media')
    if not any(t.train for t in turns):
        raise _fail(where, "no turn is trained (every turn has train: false)")
    media = generate = None
    if "media" in obj and "generate" in obj:
        raise _fail(where, 'give "media" or "generate", not both')
    if "media" in obj:
        if not isinstance(obj["media"], str) or not obj["media"]:
            raise _fail(where, '"media" must be a file path')
        media = Path(obj["media"]) if Path(obj["media"]).is_absolute() else base / obj["media"]
    if "generate" in obj:
        generate = obj["generate"]
        if not isinstance(generate, dict):
            raise _fail(where, '"generate" must be an object, e.g. {"kind": "clip", "seed": 1}')
    system = obj.get("system")
    if system is not None:
        system = _text(obj, "system", where, True) or None
    streams = {}
    for key in ("video", "audio"):
        value = obj.get(key, True)
        if not isinstance(value, bool):
            raise _fail(where, f'"{key}" must be true or false, got {value!r}')
        streams[key] = value
    if not any(streams.values()):
        raise _fail(where, '"video" and "audio" cannot both be false')
    if media is None and generate is None and not all(streams.values()):
        raise _fail(where, '"video"/"audio" select streams of "media" or "generate"; this line has neither')
    start = _number(obj, "start_s", where, 0.0, -1e-9, 1e7) if "start_s" in obj else 0.0
    if start and media is None and generate is None:
        raise _fail(where, '"start_s" places "media" or "generate" in time; this line has neither')
    soft = obj.get("frame_soft_tokens", 70)
    if soft not in SOFT_TOKEN_BUDGETS or isinstance(soft, bool):
        raise _fail(where, f'"frame_soft_tokens" must be one of {SOFT_TOKEN_BUDGETS}, got {soft!r}')
    return ExampleSpec(
        turns=turns, media=media, generate=generate, system=system, video=streams["video"], audio=streams["audio"],
        start_s=start, fps=_number(obj, "fps", where, 1.0, 0.0, 30.0), frame_soft_tokens=int(soft),
        audio_segment_s=_number(obj, "audio_segment_s", where, 1.0, 0.0, 30.0), line=line,
    )  # fmt: skip


def read_jsonl(path: str | Path) -> list[ExampleSpec]:
    """Every example of a JSONL file, validated up front (InputError names file and line)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {file}: {exc}") from exc
    specs = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            obj = jsonio.loads(raw)
        except ValueError as exc:
            raise InputError(f"{file.name} line {number}: not valid JSON ({exc})") from None
        try:
            specs.append(parse_example(obj, file.parent, number))
        except InputError as exc:
            raise InputError(f"{file.name} {exc}") from None
    if not specs:
        raise InputError(f"{file}: no examples")
    return specs


# ---- layout ------------------------------------------------------------------------------------
def _append(lay: Layout, part: Layout) -> None:
    """Concatenate ``part`` onto ``lay`` (media offsets shifted)."""
    offset = len(lay)
    lay.media += [(start + offset, seg) for start, seg in part.media]
    lay.ids += part.ids
    lay.kinds += part.kinds
    lay.block_ids += part.block_ids


def _text_layout(ids: list[int]) -> Layout:
    return Layout(ids=list(ids), kinds=[MM_TEXT] * len(ids), block_ids=[-1] * len(ids))


def build_conversation(
    config: ModelConfig,
    tokenizer: Tokenizer,
    *,
    media: Iterable[VideoFrame | AudioFrames] = (),
    turns: Iterable[Turn],
    system_prompt: str | None = None,
    frame_soft_tokens: int = 70,
    audio_segment_s: float = 1.0,
) -> tuple[Layout, list[int]]:
    """The layout of a fresh session fed ``media`` and asked ``turns`` (each at its ``at_s``).

    For a single turn asked after all media this is exactly
    :func:`streamer.engine.conversation.build_example` with the answer. Between turns, the
    session's own markers close the model's turn; the first of them (the stop token) is labelled
    with the answer it ends.
    """
    timeline = Timeline(audio_segment_s)
    builder = SequenceBuilder(
        config, tokenizer, frame_soft_tokens=frame_soft_tokens, audio_segment_s=audio_segment_s
    )
    chat = tokenizer.chat_format
    suffix = tokenizer.encode(chat.model_suffix) if chat is not None else []
    lay, labels = Layout(), []
    block = 0
    pending_stop = False  # the last answer's closing marker is still to come

    def emit(units: list[PendingUnit]) -> None:
        nonlocal block, pending_stop
        if not units:
            return
        part = builder.lay_out(units, block)
        block = max([block - 1, *part.block_ids]) + 1
        part_labels = [IGNORE_INDEX] * len(part)
        if pending_stop and suffix and part.ids[: len(suffix)] == suffix:
            part_labels[0] = suffix[0]
        pending_stop = False
        _append(lay, part)
        labels.extend(part_labels)

    emit(builder.start(system_prompt))
    items = iter(media)
    waiting: VideoFrame | AudioFrames | None = None
    for turn in turns:
        queued: list[Item] = []
        while True:
            item = waiting if waiting is not None else next(items, None)
            waiting = None
            if item is None:
                break
            if turn.at_s is not None and item.t_s >= turn.at_s:
                waiting = item
                break
            if isinstance(item, VideoFrame):
                queued += timeline.push_frame(item.image, item.t_s)
            else:
                queued += timeline.push_audio(item.waveform(), item.t_s)
        queued += timeline.flush()
        queued.append(QuestionItem(check_text(turn.prompt, "prompt", empty_ok=False), SamplingParams()))
        emit([u for q in queued for u in builder.units_of(q)])
        ids = tokenizer.encode(turn.answer)
        _append(lay, _text_layout(ids))
        labels.extend(ids if turn.train else [IGNORE_INDEX] * len(ids))
        pending_stop = turn.train
    # The last answer: its closing marker, as build_example writes it.
    _append(lay, _text_layout(suffix))
    labels.extend((suffix[:1] if pending_stop else [IGNORE_INDEX] * min(1, len(suffix))) +
                  [IGNORE_INDEX] * max(len(suffix) - 1, 0))  # fmt: skip
    return lay, labels


def load_example(
    spec: ExampleSpec, config: ModelConfig, tokenizer: Tokenizer, resolve: MediaResolver | None = None
) -> Example:
    """Decode the example's media (as ``streamer ask`` would) and build its layout and labels."""
    from streamer.media import SamplingPolicy, open_media

    path = spec.media
    if spec.generate is not None:
        if resolve is None:
            raise InputError(f"line {spec.line}: generated media needs a media cache (no resolver)")
        path = resolve(spec.generate)
    items: Iterator[VideoFrame | AudioFrames] | tuple[()] = ()
    if path is not None:
        try:
            source = open_media(path, SamplingPolicy.fixed_rate(spec.fps))
        except MediaError as exc:
            raise MediaError(f"line {spec.line}: {exc}") from exc
        with source:
            decoded = [i for i in source.items() if (spec.video if isinstance(i, VideoFrame) else spec.audio)]
        items = iter([replace(i, t_s=i.t_s + spec.start_s) for i in decoded] if spec.start_s else decoded)
    lay, labels = build_conversation(
        config, tokenizer, media=items, turns=spec.turns, system_prompt=spec.system,
        frame_soft_tokens=spec.frame_soft_tokens, audio_segment_s=spec.audio_segment_s,
    )  # fmt: skip
    return Example(lay, labels, spec)
