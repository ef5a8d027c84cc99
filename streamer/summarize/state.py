"""Resume state: after each chunk, the session snapshot and a small JSON file, saved atomically.

A state directory holds ``state.json`` and ``session-<chunks>.safetensors`` (see
:mod:`streamer.engine.snapshot`). The snapshot is written first under a new name, then
``state.json`` (which names it) replaces the old one, then older snapshots are removed: a crash
at any point leaves a consistent pair. ``state.json``::

    {"format", "input": {"path", "path_bytes", "size", "mtime_ns"}, "options": {...}, "model",
     "position_s", "chunks_done", "notes": [...], "text_tokens", "snapshot", "timings"}

``input.path`` is for people (undecodable bytes shown as U+FFFD); ``input.path_bytes`` is the
name's exact bytes in hex, so a file whose name is not UTF-8 is found again. Every field is
type- and range-checked on load: a damaged or hand-edited file is one InputError, never a crash.

``position_s`` is where the saved session stands in the media: every item with ``t_s`` before it
was pushed. A resumed run re-opens the media, skips those items (decoding is cheap; nothing is
prefilled twice) and continues; with greedy decoding it gives the same tokens.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamer import jsonio
from streamer.errors import InputError, OutputError
from streamer.outputs import atomic_write_text
from streamer.summarize.result import Note
from streamer.text import display, path_bytes

if TYPE_CHECKING:
    from streamer.engine.engine import Engine
    from streamer.engine.session import Session

__all__ = ["ResumeState", "StateDir", "input_fingerprint", "check_resumable", "STATE_FORMAT"]

STATE_FORMAT = "streamer-summarize-state-v1"


_SNAPSHOT_NAME = re.compile(r"(session-\d{5,}\.safetensors)?")  # empty until the first save


def input_fingerprint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Absolute path (shown and as exact bytes), size and modification time of an input file."""
    p = Path(path).resolve()
    st = p.stat()
    return {
        "path": display(p),
        "path_bytes": path_bytes(p).hex(),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
    }


@dataclass
class ResumeState:
    """Progress through one recording, as saved after each chunk."""

    input: dict[str, Any]  # input_fingerprint() of the recording
    options: dict[str, Any]  # SummarizeOptions.fingerprint()
    model: str  # streamer.model.fingerprint.checkpoint_fingerprint of the engine's checkpoint and dtype
    position_s: float = 0.0  # seconds: every item with t_s < position_s is in the saved session
    chunks_done: int = 0  # notes asked so far
    notes: list[Note] = field(default_factory=list)
    text_tokens: int = 0  # tokens of the notes' questions and answers held in the session
    snapshot: str = ""  # file name of the session snapshot in the state directory
    timings: dict[str, float] = field(default_factory=dict)  # seconds spent so far, per phase

    def to_json(self) -> str:
        data = {"format": STATE_FORMAT, **self.__dict__, "notes": [n.to_dict() for n in self.notes]}
        return jsonio.dumps(data, indent=1, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ResumeState:
        """Parse and check a state file; ValueError naming the first bad field."""
        data = jsonio.loads(text)
        if not isinstance(data, dict) or data.pop("format", None) != STATE_FORMAT:
            raise ValueError("not a streamer summarize state file")
        _check_fields(data)
        data["notes"] = [Note.from_dict(n) for n in data["notes"]]
        return cls(**data)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_seconds(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value) and value >= 0


_FIELDS: dict[str, tuple[str, Any]] = {  # field -> (what it must be, test)
    "input": ("an object", lambda v: isinstance(v, dict)),
    "options": ("an object", lambda v: isinstance(v, dict)),
    "model": ("a string", lambda v: isinstance(v, str)),
    "position_s": ("a number of seconds >= 0", _is_seconds),
    "chunks_done": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "notes": ("a list", lambda v: isinstance(v, list)),
    "text_tokens": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "snapshot": ("a file name session-NNNNN.safetensors or empty", lambda v: isinstance(v, str) and bool(_SNAPSHOT_NAME.fullmatch(v))),
    "timings": ("an object of seconds", lambda v: isinstance(v, dict) and all(isinstance(k, str) and _is_seconds(x) for k, x in v.items())),
}  # fmt: skip
_NOTE_FIELDS: dict[str, tuple[str, Any]] = {
    "index": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "start_s": ("a number of seconds >= 0", _is_seconds),
    "end_s": ("a number of seconds >= 0", _is_seconds),
    "text": ("a string", lambda v: isinstance(v, str)),
    "tokens": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
}


def _check_object(where: str, data: dict[str, Any], fields: dict[str, tuple[str, Any]]) -> None:
    missing = sorted(set(fields) - set(data))
    unknown = sorted(set(data) - set(fields))
    if missing or unknown:
        raise ValueError(f"{where}: missing field(s) {missing}, unknown field(s) {unknown}")
    for name, (what, ok) in fields.items():
        if not ok(data[name]):
            shown = repr(data[name])
            raise ValueError(
                f"{where}{name} must be {what}, got {shown if len(shown) < 60 else shown[:57] + '...'}"
            )


def _check_fields(data: dict[str, Any]) -> None:
    _check_object("", data, _FIELDS)
    for i, note in enumerate(data["notes"]):
        if not isinstance(note, dict):
            raise ValueError(f"notes[{i}] must be an object")
        _check_object(f"notes[{i}].", note, _NOTE_FIELDS)


def check_resumable(saved: ResumeState, current: ResumeState, where: Path) -> None:
    """InputError naming what differs when ``saved`` cannot continue as ``current`` would run."""
    problems = []
    if saved.input != current.input:
        problems.append("the input file changed (path, size or modification time)")
    diff = sorted(k for k in set(saved.options) | set(current.options)
                  if saved.options.get(k) != current.options.get(k))  # fmt: skip
    if diff:
        shown = ", ".join(f"{k} {saved.options.get(k)!r} then, {current.options.get(k)!r} now" for k in diff)
        problems.append(f"other options ({shown})")
    if saved.model != current.model:
        problems.append("another model or dtype")
    if problems:
        raise InputError(
            f"cannot resume from {where}: {'; '.join(problems)}. Rerun without --resume to start over"
        )


class StateDir:
    """The state directory of one input (created on first save, removed when the summary is written)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.state_file = self.path / "state.json"

    def exists(self) -> bool:
        return self.state_file.is_file()

    def load(self) -> ResumeState:
        try:
            state = ResumeState.from_json(self.state_file.read_text(encoding="utf-8"))
            if not state.snapshot:
                raise ValueError("it names no session snapshot")
            return state
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise InputError(
                f"{display(self.state_file)}: unreadable resume state ({exc}); "
                "rerun without --resume to start over"
            ) from exc

    def snapshot_path(self, state: ResumeState) -> Path:
        return self.path / state.snapshot

    def save(self, engine: Engine, session: Session, state: ResumeState) -> None:
        """Snapshot ``session`` (idle) and write ``state`` naming it; older snapshots go."""
        from streamer.engine.snapshot import save_session

        previous, snapshot = state.snapshot, f"session-{state.chunks_done:05d}.safetensors"
        saved = False
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            state.snapshot = snapshot
            save_session(engine, session, self.path / snapshot)
            atomic_write_text(self.state_file, state.to_json())
            saved = True
        except OSError as exc:
            raise OutputError(
                f"cannot save the resume state in {display(self.path)}: {exc.strerror or exc}"
            ) from exc
        finally:
            if not saved:  # failed or interrupted: the last good pair stays, nothing half-written
                state.snapshot = previous
                self._keep_only(previous)
        self._keep_only(snapshot)

    def _keep_only(self, snapshot: str) -> None:
        """Remove every snapshot (and crashed write) but ``snapshot``; the folder too if it holds no state."""
        if not self.path.is_dir():
            return
        for old in self.path.glob("session-*.safetensors*"):
            if old.name != snapshot:
                old.unlink(missing_ok=True)
        if not self.exists():
            self.remove()

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
