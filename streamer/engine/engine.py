"""The engine: the supervised loop of :mod:`streamer.engine.runtime` around a loaded model.

    engine = Engine(load_model(path), load_tokenizer(path))
    engine.start()                                   # or drive it: engine.run_until_idle()
    session = engine.open_session(SessionConfig(system_prompt="You watch a robot's camera."))
    session.push_frame(rgb, t_s=0.0); session.push_audio(pcm16k, t_s=0.0)
    for event in session.ask("What do you see?"): print(event.text, end="")
    engine.stop()

Snapshots go through :meth:`Engine.export_session` / :meth:`Engine.import_session` (plain
tensors + a JSON-able header; :mod:`streamer.engine.snapshot` writes them to files).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch

from streamer.engine.context import ContextStats
from streamer.engine.core import ModelCore, default_context_tokens, stop_token_ids
from streamer.engine.eviction import Unit
from streamer.engine.protocol import SessionConfig
from streamer.engine.runtime import EngineConfig, EngineLoop, EngineMetrics
from streamer.engine.session import Session
from streamer.engine.timeline import Timeline
from streamer.errors import SessionError
from streamer.model.tokenizer import Tokenizer
from streamer.model.weights import LoadedModel

__all__ = ["Engine", "EngineConfig", "SessionSnapshot", "default_context_tokens", "stop_token_ids"]


class SessionSnapshot:
    """An idle session's exact state: cache tensors and a JSON-able header."""

    def __init__(self, tensors: dict[str, torch.Tensor], header: dict[str, Any]):
        self.tensors = tensors
        self.header = header


class Engine(EngineLoop):
    def __init__(self, loaded: LoadedModel, tokenizer: Tokenizer, config: EngineConfig | None = None):
        config = config or EngineConfig()
        metrics = EngineMetrics()
        self.model_core = ModelCore(loaded, tokenizer, config, metrics)
        super().__init__(self.model_core, config, metrics)
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = tokenizer
        self._fingerprint: str | None = None

    @property
    def stop_ids(self) -> frozenset[int]:
        """Tokens that end an answer (settable: a benchmark on random weights decodes full lengths)."""
        return self.model_core.stop_ids

    @stop_ids.setter
    def stop_ids(self, ids: frozenset[int]) -> None:
        self.model_core.stop_ids = frozenset(ids)

    @property
    def banned_ids(self) -> list[int]:
        return self.model_core.banned_ids

    @property
    def scheduler_config(self):  # noqa: ANN201 - SchedulerConfig
        return self.model_core.scheduler_config

    def fingerprint(self) -> str:
        """The checkpoint's content hash and dtype (computed once): what a snapshot must match."""
        if self._fingerprint is None:
            from streamer.model.fingerprint import checkpoint_fingerprint

            self._fingerprint = checkpoint_fingerprint(self.loaded.path, str(self.loaded.dtype))
        return self._fingerprint

    def context_stats(self, session: Session) -> ContextStats:
        """The session's cache figures (from the step thread, so exact)."""
        return self.call(lambda: self.model_core.slot(session.id).context.stats())

    def context_units(self, session: Session) -> list[Unit]:
        """The units in the session's full-attention cache, oldest first (what eviction kept)."""
        return self.call(lambda: list(self.model_core.slot(session.id).context.units))

    # ---- snapshots -----------------------------------------------------------------------------
    def export_session(self, session: Session, timeout: float | None = 60.0) -> SessionSnapshot:
        """An idle session's state (no answer running, nothing queued or held)."""
        if not session.idle or session.stats().queued_bytes:
            raise SessionError("a session can be saved only when idle (no answer running, no input waiting)")
        tensors, header = self.call(lambda: self.model_core.export_state(session.id), timeout)
        header["config"] = asdict(session.config)
        header["timeline"] = session.record.timeline.export()
        return SessionSnapshot(tensors, header)

    def import_session(self, snapshot: SessionSnapshot, timeout: float | None = 60.0) -> Session:
        """A new session holding ``snapshot``'s state (it continues bit for bit)."""
        header = snapshot.header
        try:
            config = SessionConfig(**header["config"])
            timeline_state = dict(header["timeline"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SessionError(f"the snapshot header is malformed ({exc})") from None
        session = self.open_session(config)
        record = session.record
        record.timeline = Timeline.restore(
            timeline_state,
            config.audio_segment_s,
            config.max_held_frames,
            record.timeline.clock,
            config.audio_stall_s,
        )
        try:
            self.call(lambda: self.model_core.import_state(session.id, snapshot.tensors, header), timeout)
        except BaseException:
            session.close()
            raise
        return session
