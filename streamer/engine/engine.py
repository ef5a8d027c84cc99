"""The engine: one model shared by many sessions, stepped by one thread.

Each :meth:`Engine.step` asks the :class:`Scheduler` for a plan, prefills the chosen chunks
(one forward per chunk) and decodes one token for every answering session in one batched
forward. Errors in one session end that session's answer with ``error`` and leave every other
session running. Use :meth:`start` for a background thread (servers) or :meth:`run_until_idle`
to drive it from the caller (CLI, tests).
"""

from __future__ import annotations

import json
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import torch

from streamer.engine.context import SessionContext, decode_batch, kv_bytes_per_token
from streamer.engine.eviction import EvictionPolicy
from streamer.engine.sampling import ChoiceConstraint, SamplingParams, sample
from streamer.engine.scheduler import Scheduler, SchedulerConfig, SessionView
from streamer.engine.sequence import PendingUnit, SequenceBuilder
from streamer.engine.session import AnswerEvent, FinishReason, Session, SessionConfig, _Question
from streamer.errors import InputError, SessionError, StreamerError
from streamer.model.tokenizer import IncrementalDecoder, Tokenizer
from streamer.model.weights import LoadedModel

__all__ = ["Engine", "EngineConfig", "default_context_tokens", "stop_token_ids"]

DEFAULT_KV_BYTES_PER_SESSION = 1 << 30  # memory target for one session's full-attention cache


@dataclass
class EngineConfig:
    max_sessions: int = 64  # open sessions at once
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    kv_bytes_per_session: int = DEFAULT_KV_BYTES_PER_SESSION  # default budget's memory target


def default_context_tokens(loaded: LoadedModel, kv_bytes: int = DEFAULT_KV_BYTES_PER_SESSION) -> int:
    """Budget from the model's shapes and a memory target, inside the trained position range."""
    per_token = kv_bytes_per_token(loaded.model, loaded.dtype)
    text = loaded.config.text
    return int(min(text.max_position_embeddings, kv_bytes // max(per_token, 1)))


def stop_token_ids(loaded: LoadedModel, tokenizer: Tokenizer | None) -> frozenset[int]:
    """EOS ids of the config and of generation_config.json, plus the template's turn-closing token."""
    ids = set(loaded.config.text.eos_token_ids)
    gen = Path(loaded.path) / "generation_config.json"
    if gen.is_file():
        try:
            eos = json.loads(gen.read_text(encoding="utf-8")).get("eos_token_id")
        except (OSError, ValueError):
            eos = None
        if isinstance(eos, int):
            ids.add(eos)
        elif isinstance(eos, list):
            ids.update(int(e) for e in eos if isinstance(e, int))
    if tokenizer is not None and tokenizer.chat_format is not None:
        suffix = tokenizer.encode(tokenizer.chat_format.model_suffix.strip())
        if len(suffix) == 1:
            ids.add(suffix[0])
    return frozenset(ids)


@dataclass
class _Answering:
    question: _Question
    decoder: IncrementalDecoder
    generator: torch.Generator | None
    next_token: int = -1  # sampled, not yet fed to the model
    generated: int = 0


class _SessionSlot:
    """Engine-side state of one session (touched by the engine thread only, except the inbox)."""

    def __init__(self, session: Session, context: SessionContext):
        self.session = session
        self.context = context
        self.answering: _Answering | None = None


class Engine:
    def __init__(self, loaded: LoadedModel, tokenizer: Tokenizer, config: EngineConfig | None = None):
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = tokenizer
        self.config = config or EngineConfig()
        self.scheduler = Scheduler(self.config.scheduler)
        self.stop_ids = stop_token_ids(loaded, tokenizer)
        # Media placeholders are never generated: they stand for soft tokens, not text.
        cfg = loaded.config
        self.banned_ids = sorted(
            {i for i in (cfg.image_token_id, cfg.video_token_id, cfg.audio_token_id) if i is not None}
            - self.stop_ids
        )
        audio = loaded.config.audio
        self.samples_per_token = audio.samples_per_token if audio else 640
        self._slots: dict[int, _SessionSlot] = {}
        self._next_id = 0
        # Lock order: engine lock, then a session's lock. Pushers take only their session's lock
        # and the wake-up condition (its own lock), so they never wait for a running step.
        self._lock = threading.RLock()
        self._wakeup = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._running = False

    # ---- sessions -----------------------------------------------------------------------------
    def open_session(self, config: SessionConfig | None = None) -> Session:
        config = config or SessionConfig()
        text = self.loaded.config.text
        budget = config.max_context_tokens or default_context_tokens(
            self.loaded, self.config.kv_bytes_per_session
        )
        window = text.effective_sliding_window if "sliding_attention" in (text.layer_types or []) else 0
        protect = window + 16
        minimum = protect + self.config.scheduler.prefill_chunk_tokens + 256
        if budget < minimum:
            raise InputError(
                f"max_context_tokens {budget} is too small for this model: it must hold the sliding window, "
                f"a prefill chunk and the system prompt (at least {minimum})"
            )
        if budget > text.max_position_embeddings:
            raise InputError(
                f"max_context_tokens {budget} exceeds the model's {text.max_position_embeddings} positions"
            )
        if not 0.1 <= config.evict_to_fraction <= 1.0:
            raise InputError("evict_to_fraction must be in [0.1, 1]")
        target = max(int(budget * config.evict_to_fraction), minimum)
        policy = EvictionPolicy(capacity=budget, target=min(target, budget), protect_recent=protect)
        with self._lock:
            if len(self._slots) >= self.config.max_sessions:
                raise SessionError(
                    f"the engine already serves its maximum of {self.config.max_sessions} sessions"
                )
            session_id = self._next_id
            self._next_id += 1
            builder = SequenceBuilder(
                self.loaded.config, self.tokenizer,
                frame_soft_tokens=config.frame_soft_tokens, audio_segment_s=config.audio_segment_s,
            )  # fmt: skip
            context = SessionContext(self.model, policy, self.loaded.dtype, self.loaded.device)
            session = Session(self, session_id, config, builder)
            self._slots[session_id] = _SessionSlot(session, context)
        return session

    @property
    def num_sessions(self) -> int:
        return len(self._slots)

    def context_stats(self, session: Session):  # noqa: ANN201 - ContextStats
        return self._slots[session.id].context.stats()

    def _make_constraint(self, params: SamplingParams) -> ChoiceConstraint | None:
        if not params.choices:
            return None
        end = min(self.stop_ids) if self.stop_ids else None
        if end is None:
            raise InputError("choices need a stop token, and this checkpoint defines none")
        return ChoiceConstraint([self.tokenizer.encode(c) for c in params.choices], end)

    def _cancel_answer(self, session: Session, reason: FinishReason) -> None:
        with self._lock:
            slot = self._slots.get(session.id)
            if slot is None:
                return
            if slot.answering is not None:
                self._finish(slot, reason)

    def _close_session(self, session: Session) -> None:
        with self._lock:
            slot = self._slots.pop(session.id, None)
            if slot is None:
                return
            if slot.answering is not None:
                self._finish(slot, FinishReason.CLOSED, context=False)
            for q in list(session._inbox.questions):
                q.stream.emit(AnswerEvent("", [], FinishReason.CLOSED))
            slot.context.release()

    def _wake(self) -> None:
        with self._wakeup:
            self._wakeup.notify()

    # ---- stepping -----------------------------------------------------------------------------
    def step(self) -> bool:
        """Run one scheduling step; False when there was nothing to do."""
        with self._lock:
            views = []
            for sid, slot in self._slots.items():
                with slot.session._lock:
                    units = list(slot.session._inbox.units)
                sizes = tuple(u.unit.tokens for u in units)
                views.append(
                    SessionView(sid, sizes, any(u.question for u in units), slot.answering is not None)
                )
            plan = self.scheduler.schedule(views)
            if plan.is_empty:
                return False
            for sid, count in plan.prefill:
                self._prefill(self._slots[sid], count)
            decoding = [
                self._slots[sid] for sid in plan.decode if sid in self._slots and self._slots[sid].answering
            ]
            if decoding:
                self._decode(decoding)
        return True

    def run_until_idle(self) -> None:
        while self.step():
            pass

    def start(self) -> None:
        """Step in a background thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="streamer-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        self._wake()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        while self._running:
            if not self.step():
                with self._wakeup:
                    if self._running:
                        self._wakeup.wait(timeout=0.05)

    # ---- prefill ------------------------------------------------------------------------------
    def _take_units(self, slot: _SessionSlot, count: int) -> list[PendingUnit]:
        inbox = slot.session._inbox
        units: list[PendingUnit] = []
        with slot.session._lock:
            while inbox.units and len(units) < count:
                unit = inbox.units.popleft()
                inbox.pending_tokens -= unit.unit.tokens
                units.append(unit)
                if unit.question:
                    break  # the answer starts right after the question
        return units

    def _prefill(self, slot: _SessionSlot, count: int) -> None:
        units = self._take_units(slot, count)
        if not units:
            return
        ctx = slot.context
        try:
            lay = slot.session._builder.lay_out(units, ctx.next_block)
            logits = ctx.prefill(lay, [u.unit for u in units])
        except StreamerError as exc:
            self._fail(slot, units, str(exc))
            return
        except Exception as exc:  # a bug must not take the engine down with it
            traceback.print_exc()
            self._fail(slot, units, f"internal error: {exc!r}")
            return
        if units[-1].question:
            with slot.session._lock:
                question = slot.session._inbox.questions.popleft()
            self._begin_answer(slot, question, logits)

    def _fail(self, slot: _SessionSlot, units: list[PendingUnit], message: str) -> None:
        if any(u.question for u in units):
            with slot.session._lock:
                question = slot.session._inbox.questions.popleft()
            question.stream.emit(AnswerEvent("", [], FinishReason.ERROR, error=message))
        elif slot.answering is not None:
            self._finish(slot, FinishReason.ERROR, error=message)

    # ---- decode -------------------------------------------------------------------------------
    def _begin_answer(self, slot: _SessionSlot, question: _Question, logits: torch.Tensor) -> None:
        stats = slot.context.stats()
        question.stream.context_tokens = stats.context_tokens
        question.stream.evicted_tokens = stats.evicted_tokens
        if question.stream.finished:  # cancelled while waiting
            return
        params = question.params
        gen = None
        if params.temperature > 0:
            gen = torch.Generator(device=logits.device)
            gen.manual_seed(params.seed if params.seed is not None else torch.seed())
        slot.answering = _Answering(question, IncrementalDecoder(self.tokenizer), gen)
        self._accept(slot, logits)

    def _accept(self, slot: _SessionSlot, logits: torch.Tensor) -> None:
        """Sample from ``logits``, stream the token, and finish or keep decoding."""
        ans = slot.answering
        assert ans is not None
        params, constraint = ans.question.params, ans.question.constraint
        allowed = constraint.allowed() if constraint is not None else None
        token = sample(logits.float(), params, ans.generator, allowed, self.banned_ids)
        ans.generated += 1
        if constraint is not None and constraint.advance(token):
            if token not in self.stop_ids:
                ans.question.stream.emit(AnswerEvent(ans.decoder.push(token), [token]))
                ans.next_token = token
                self._finish(slot, FinishReason.CHOICE, feed_last=True)
            else:
                self._finish(slot, FinishReason.CHOICE)
            return
        if token in self.stop_ids:
            self._finish(slot, FinishReason.STOP)
            return
        ans.question.stream.emit(AnswerEvent(ans.decoder.push(token), [token]))
        ans.next_token = token
        if ans.generated >= params.max_new_tokens:
            self._finish(slot, FinishReason.LENGTH, feed_last=True)

    def _decode(self, slots: list[_SessionSlot]) -> None:
        ready: list[_SessionSlot] = []
        for slot in slots:
            try:
                slot.context.reserve_decode()
                ready.append(slot)
            except StreamerError as exc:
                self._finish(slot, FinishReason.ERROR, error=str(exc))
        if not ready:
            return
        tokens = [s.answering.next_token for s in ready]  # type: ignore[union-attr]
        logits = decode_batch(self.model, [s.context for s in ready], tokens)
        for slot, row in zip(ready, logits, strict=True):
            if slot.answering is not None:
                self._accept(slot, row)

    def _finish(
        self,
        slot: _SessionSlot,
        reason: FinishReason,
        error: str | None = None,
        feed_last: bool = False,
        context: bool = True,
    ) -> None:
        ans = slot.answering
        if ans is None:
            return
        slot.answering = None
        if feed_last and context:
            # The last emitted token is part of the answer: put it in the context before the turn closes.
            try:
                decode_batch(self.model, [slot.context], [ans.next_token])
            except StreamerError:
                pass
        if context:
            slot.context.close_answer()
        ans.question.stream.emit(AnswerEvent("", [], reason, error=error))
