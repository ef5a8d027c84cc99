"""Resumable training state in ``<out>/.finetune-state/``, saved atomically.

    trainable.safetensors   the trainable tensors (LoRA adapters, or every weight for full training)
    optimizer.pt            AdamW's moments (torch.save; loaded with weights_only=True)
    state.json              step, examples consumed, running loss, elapsed time, the run's fingerprint

A resumed run continues at the saved step with the same data order and the same optimizer state,
so it ends where the uninterrupted run would have (tested). A resume with other settings is
refused with the differences named.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from streamer import jsonio
from streamer.errors import InputError

__all__ = ["TrainState", "StateDir", "STATE_DIRNAME"]

STATE_DIRNAME = ".finetune-state"


@dataclass
class TrainState:
    """Where a run stands."""

    fingerprint: dict[str, Any]  # settings a resume must share
    step: int = 0  # optimizer steps done
    consumed: int = 0  # examples consumed (position in the data order)
    tokens: int = 0  # sequence tokens processed
    trained_tokens: int = 0  # answer tokens that carried loss
    loss_ema: float | None = None  # running mean of the step loss (per answer token)
    elapsed_s: float = 0.0  # wall seconds of training so far (all processes)
    cpu_s: float = 0.0  # CPU seconds of training so far (all processes, all threads)
    history: list[dict[str, float]] = field(default_factory=list)  # one entry per logged step


class StateDir:
    """The state directory of one output directory."""

    def __init__(self, out: Path):
        self.path = out / STATE_DIRNAME

    def exists(self) -> bool:
        return (self.path / "state.json").is_file()

    def save(self, state: TrainState, trainable: dict[str, torch.Tensor], optimizer: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".finetune-state-", dir=self.path.parent))
        try:
            save_file(
                {k: v.detach().contiguous() for k, v in trainable.items()},
                str(staging / "trainable.safetensors"),
            )
            torch.save(optimizer, staging / "optimizer.pt")
            (staging / "state.json").write_text(jsonio.dumps(asdict(state), indent=1), encoding="utf-8")
            old = self.path.with_name(STATE_DIRNAME + ".old")
            if self.path.exists():
                self.path.replace(old)
            staging.replace(self.path)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def load(self, fingerprint: dict[str, Any]) -> tuple[TrainState, dict[str, torch.Tensor], dict[str, Any]]:
        """The saved state; InputError when it is unreadable or was saved with other settings."""
        try:
            raw = jsonio.loads((self.path / "state.json").read_text(encoding="utf-8"))
            state = TrainState(**raw)
            trainable = load_file(str(self.path / "trainable.safetensors"))
            optimizer = torch.load(self.path / "optimizer.pt", weights_only=True)
        except (OSError, ValueError, TypeError, SafetensorError, RuntimeError) as exc:
            raise InputError(f"{self.path}: the saved training state cannot be read ({exc})") from exc
        diff = sorted(k for k in set(fingerprint) | set(state.fingerprint)
                      if fingerprint.get(k) != state.fingerprint.get(k))  # fmt: skip
        if diff:
            shown = ", ".join(f"{k}: {state.fingerprint.get(k)!r} → {fingerprint.get(k)!r}" for k in diff)
            raise InputError(f"cannot resume: the run was started with other settings ({shown})")
        return state, trainable, optimizer

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
