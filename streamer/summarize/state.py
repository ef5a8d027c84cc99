"""Resume state: after each chunk, the session snapshot and a small JSON file, saved atomically.

A state directory holds ``state.json`` and ``session-<chunks>.safetensors`` (see
:mod:`streamer.engine.snapshot`). The snapshot is written first under a new name, then
``state.json`` (which names it) replaces the old one, then older snapshots are removed: a crash
at any point leaves a consistent pair. ``state.json``::

    {"format", "input": {"path", "size", "mtime_ns"}, "options": {...}, "model",
     "position_s", "chunks_done", "notes": [...], "text_tokens", "snapshot", "timings"}

``position_s`` is where the saved session stands in the media: every item with ``t_s`` before it
was pushed. A resumed run re-opens the media, skips those items (decoding is cheap; nothing is
prefilled twice) and continues; with greedy decoding it gives the same tokens.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamer.errors import InputError
from streamer.summarize.files import atomic_write_text
from streamer.summarize.result import Note

if TYPE_CHECKING:
    from streamer.engine.engine import Engine
    from streamer.engine.session import Session

__all__ = ["ResumeState", "StateDir", "input_fingerprint", "check_resumable", "STATE_FORMAT"]

STATE_FORMAT = "streamer-summarize-state-v1"


def input_fingerprint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Absolute path, size and modification time of an input file."""
    p = Path(path).resolve()
    st = p.stat()
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


@dataclass
class ResumeState:
    """Progress through one recording, as saved after each chunk."""

    input: dict[str, Any]  # input_fingerprint() of the recording
    options: dict[str, Any]  # SummarizeOptions.fingerprint()
    model: str  # streamer.engine.snapshot.model_fingerprint of the engine's model
    position_s: float = 0.0  # seconds: every item with t_s < position_s is in the saved session
    chunks_done: int = 0  # notes asked so far
    notes: list[Note] = field(default_factory=list)
    text_tokens: int = 0  # tokens of the notes' questions and answers held in the session
    snapshot: str = ""  # file name of the session snapshot in the state directory
    timings: dict[str, float] = field(default_factory=dict)  # seconds spent so far, per phase

    def to_json(self) -> str:
        data = {"format": STATE_FORMAT, **self.__dict__, "notes": [n.to_dict() for n in self.notes]}
        return json.dumps(data, indent=1, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ResumeState:
        data = json.loads(text)
        if data.pop("format", None) != STATE_FORMAT:
            raise ValueError("not a streamer summarize state file")
        data["notes"] = [Note.from_dict(n) for n in data["notes"]]
        return cls(**data)


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
            return ResumeState.from_json(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"{self.state_file}: unreadable resume state ({exc}); rerun without --resume to start over"
            ) from exc

    def snapshot_path(self, state: ResumeState) -> Path:
        return self.path / state.snapshot

    def save(self, engine: Engine, session: Session, state: ResumeState) -> None:
        """Snapshot ``session`` (idle) and write ``state`` naming it; older snapshots go."""
        from streamer.engine.snapshot import save_session

        self.path.mkdir(parents=True, exist_ok=True)
        state.snapshot = f"session-{state.chunks_done:05d}.safetensors"
        save_session(engine, session, self.path / state.snapshot)
        atomic_write_text(self.state_file, state.to_json())
        for old in self.path.glob("session-*.safetensors*"):  # older snapshots and crashed writes
            if old.name != state.snapshot:
                old.unlink(missing_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
