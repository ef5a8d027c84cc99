"""The model core: one model, every session's caches, driven by the step thread only.

Each :meth:`ModelCore.step` asks the :class:`~streamer.engine.scheduler.Scheduler` for a plan,
turns the queued items it needs into units (tokenizing and preprocessing here, off the
callers' threads), prefills chunks (one forward each, all or nothing), and decodes one token
for every answering session in one batched forward.

Failure containment: a fault in a prefill rolls the session's caches and chat state back to
before the chunk and reports the lost inputs (questions end with ``error``); a fault in the
batched decode rolls every row back and ends those answers with ``error``; a fault in
sampling or tokenizing ends that answer only. The session, and every other, keeps going.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from streamer import jsonio
from streamer.engine.collector import AnswerStream
from streamer.engine.context import SessionContext, decode_batch, kv_bytes_per_token
from streamer.engine.eviction import EvictionPolicy, Unit, UnitKind
from streamer.engine.protocol import ErrorCode, FinishReason, SessionConfig
from streamer.engine.runtime import EngineConfig, EngineMetrics, SessionRecord
from streamer.engine.sampling import ChoiceConstraint, sample
from streamer.engine.scheduler import Scheduler, SchedulerConfig, SessionView
from streamer.engine.sequence import PendingUnit, SequenceBuilder
from streamer.engine.timeline import AudioItem, FrameItem, Item, QuestionItem, seconds_of
from streamer.errors import InputError, SessionError, StreamerError
from streamer.model.cache import FullKVCache, SlidingKVCache
from streamer.model.tokenizer import IncrementalDecoder, Tokenizer
from streamer.model.weights import LoadedModel

__all__ = ["ModelCore", "default_context_tokens", "stop_token_ids"]

_BUFFERS = ("keys", "values", "seq_index", "positions", "block_ids")  # per-cache tensors in a snapshot


def default_context_tokens(loaded: LoadedModel, kv_bytes: int = 1 << 30) -> int:
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
            eos = jsonio.loads(gen.read_text(encoding="utf-8")).get("eos_token_id")
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
class _Entry:
    """A unit built from a queued item, waiting for its prefill chunk."""

    unit: PendingUnit
    item: Item  # where it came from (reported if it is lost; rebuilt after a rollback)
    chat_state: tuple[bool, bool]  # the builder's state before the item was built


@dataclass
class _Answering:
    stream: AnswerStream
    params: Any  # SamplingParams
    constraint: ChoiceConstraint | None
    decoder: IncrementalDecoder
    generator: torch.Generator | None
    next_token: int = -1  # sampled, not yet fed to the model
    generated: int = 0


class _Slot:
    """Step-thread state of one session."""

    def __init__(self, record: SessionRecord, context: SessionContext, builder: SequenceBuilder):
        self.record = record
        self.context = context
        self.builder = builder
        self.ready: list[_Entry] = []  # built units not yet prefilled, in order
        self.answering: _Answering | None = None


class ModelCore:
    """Implements :class:`~streamer.engine.runtime.Core` for a loaded model."""

    def __init__(
        self, loaded: LoadedModel, tokenizer: Tokenizer, config: EngineConfig, metrics: EngineMetrics
    ):
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = tokenizer
        self.config = config
        self.metrics = metrics
        self.scheduler_config: SchedulerConfig = config.scheduler or SchedulerConfig()
        self.scheduler = Scheduler(self.scheduler_config)
        self.stop_ids = stop_token_ids(loaded, tokenizer)
        cfg = loaded.config
        # Media placeholders are never generated: they stand for soft tokens, not text.
        self.banned_ids = sorted(
            {i for i in (cfg.image_token_id, cfg.video_token_id, cfg.audio_token_id) if i is not None}
            - self.stop_ids
        )
        self._slots: dict[str, _Slot] = {}

    # ---- caller-thread helpers (pure) ----------------------------------------------------------
    def resolve(self, config: SessionConfig) -> SessionConfig:
        text = self.loaded.config.text
        budget = config.max_context_tokens or default_context_tokens(
            self.loaded, self.config.kv_bytes_per_session
        )
        minimum = self._minimum_context()
        if budget < minimum:
            raise InputError(
                f"max_context_tokens {budget} is too small for this model: it must hold the sliding window, "
                f"a prefill chunk and the system prompt (at least {minimum})",
                field="max_context_tokens",
            )
        if budget > text.max_position_embeddings:
            raise InputError(
                f"max_context_tokens {budget} exceeds the model's {text.max_position_embeddings} positions",
                field="max_context_tokens",
            )
        if self.loaded.config.vision is None and config.frame_soft_tokens != 70:
            raise InputError("this model takes no images", field="frame_soft_tokens")
        return dataclasses.replace(config, max_context_tokens=budget)

    def _protected_recent(self) -> int:
        """Recent tokens eviction never takes: the sliding window (and a margin)."""
        text = self.loaded.config.text
        return (text.effective_sliding_window if "sliding_attention" in (text.layer_types or []) else 0) + 16

    def _minimum_context(self) -> int:
        """The smallest budget a session can run in: the protected window, a prefill chunk, a system prompt."""
        return self._protected_recent() + self.scheduler_config.prefill_chunk_tokens + 256

    def estimate(self, config: SessionConfig) -> Callable[[Item], int]:
        frame = config.frame_soft_tokens + 12  # soft tokens, <boi>/<eoi>, the mm:ss stamp

        def tokens(item: Item) -> int:
            if isinstance(item, FrameItem):
                return frame
            if isinstance(item, AudioItem):
                return int(item.frames.shape[0]) + 2
            return item.nbytes // 2 + 16  # text: an estimate until the step thread tokenizes it

        return tokens

    # ---- lifecycle (step thread) ---------------------------------------------------------------
    def open(self, record: SessionRecord) -> None:
        config = record.config
        assert config.max_context_tokens is not None
        protect = self._protected_recent()
        minimum = self._minimum_context()
        budget = config.max_context_tokens
        target = max(int(budget * config.evict_to_fraction), minimum)
        policy = EvictionPolicy(capacity=budget, target=min(target, budget), protect_recent=protect)
        builder = SequenceBuilder(
            self.loaded.config,
            self.tokenizer,
            frame_soft_tokens=config.frame_soft_tokens,
            audio_segment_s=config.audio_segment_s,
            max_text_unit_tokens=self.scheduler_config.prefill_chunk_tokens,
        )
        context = SessionContext(self.model, policy, self.loaded.dtype, self.loaded.device)
        slot = _Slot(record, context, builder)
        head = builder.start(config.system_prompt)
        slot.ready = [_Entry(u, _HEAD, (False, False)) for u in head]
        self._slots[record.id] = slot

    def close(self, record: SessionRecord) -> None:
        slot = self._slots.pop(record.id, None)
        if slot is not None:
            if slot.answering is not None:
                slot.answering.stream.finish(FinishReason.CLOSED)
            slot.context.release()
            record.answering = False

    def slot(self, session_id: str) -> _Slot:
        slot = self._slots.get(session_id)
        if slot is None:
            raise SessionError(f"session {session_id} is closed")
        return slot

    # ---- snapshots (step thread) ---------------------------------------------------------------
    def export_state(self, session_id: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Cache tensors and bookkeeping of an idle session."""
        slot = self.slot(session_id)
        if slot.ready or slot.answering is not None:
            raise SessionError("a session can be saved only when idle (no answer running, no input waiting)")
        ctx = slot.context
        tensors: dict[str, torch.Tensor] = {}
        layers: dict[str, dict[str, int]] = {}
        for i, cache in enumerate(ctx.ensure_caches()):
            if cache is None:
                continue
            for name in _BUFFERS:
                tensors[f"layer{i}.{name}"] = getattr(cache, name).contiguous().cpu()
            layers[str(i)] = (
                {"length": cache.length}
                if isinstance(cache, FullKVCache)
                else {"next_slot": cache.next_slot, "filled": cache.filled}
            )
        header = {
            "policy": dataclasses.asdict(ctx.policy),
            "layers": layers,
            "units": [[int(u.kind), u.tokens, u.pinned, u.label] for u in ctx.units],
            "counters": [ctx.next_seq, ctx.next_pos, ctx.next_block, ctx.evicted_tokens, ctx.evictions],
            "builder": list(slot.builder.state()),
        }
        return tensors, header

    @torch.inference_mode()
    def import_state(self, session_id: str, tensors: dict[str, torch.Tensor], header: dict[str, Any]) -> None:
        """Replace a fresh session's state with an exported one (checked against this model)."""
        slot = self.slot(session_id)
        ctx = slot.context
        try:
            layers, units, counters = header["layers"], header["units"], header["counters"]
            chat_state = (bool(header["builder"][0]), bool(header["builder"][1]))
            caches = ctx.ensure_caches()
            for key, extra in layers.items():
                cache = caches[int(key)]
                if cache is None:
                    raise SessionError(f"layer {key} of the snapshot does not match this model")
                for name in _BUFFERS:
                    src, dst = tensors.get(f"layer{key}.{name}"), getattr(cache, name)
                    if src is None or src.shape != dst.shape or src.dtype != dst.dtype:
                        raise SessionError(
                            f"tensor layer{key}.{name} of the snapshot does not match this model"
                        )
                    dst.copy_(src)
                if isinstance(cache, FullKVCache):
                    cache.length = int(extra["length"])
                elif isinstance(cache, SlidingKVCache):
                    cache.next_slot, cache.filled = int(extra["next_slot"]), int(extra["filled"])
            restored = [Unit(UnitKind(k), int(n), pinned=bool(p), label=str(lbl)) for k, n, p, lbl in units]
            seq, pos, block, evicted, evictions = (int(c) for c in counters)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise SessionError(f"the snapshot header is malformed ({exc!r})") from None
        slot.ready = []  # the saved context replaces the fresh head
        ctx.units = restored
        ctx.next_seq, ctx.next_pos, ctx.next_block, ctx.evicted_tokens, ctx.evictions = (
            seq, pos, block, evicted, evictions,
        )  # fmt: skip
        slot.builder.set_state(chat_state)
        self.update_figures(slot)

    # ---- stepping ------------------------------------------------------------------------------
    def step(self, records: list[SessionRecord]) -> bool:
        did = False
        views = []
        for record in records:
            slot = self._slots.get(record.id)
            if slot is None:
                continue
            if slot.answering is not None and slot.answering.stream.cancelled:
                self._finish(slot, FinishReason.CANCELLED)
                did = True
            sizes, question = record.inbox.sizes()
            ready = tuple(e.unit.unit.tokens for e in slot.ready)
            question = question or any(e.unit.question for e in slot.ready)
            views.append(SessionView(record.id, ready + sizes, question, slot.answering is not None))
        plan = self.scheduler.schedule(views)
        for sid, tokens in plan.prefill:
            self._prefill(self._slots[sid], tokens)
        decoding = [self._slots[sid] for sid in plan.decode if self._slots[sid].answering is not None]
        if decoding:
            self._decode(decoding)
        return did or not plan.is_empty

    def fail(self, records: list[SessionRecord], message: str) -> None:
        for record in records:
            slot = self._slots.get(record.id)
            if slot is not None and slot.answering is not None:
                self._finish(slot, FinishReason.ERROR, message, ErrorCode.INTERNAL, context=False)

    # ---- prefill -------------------------------------------------------------------------------
    def _build(self, slot: _Slot, items: list[Item]) -> None:
        """Turn queued items into units (tokenize, patchify); a bad item is reported, not fatal."""
        for item in items:
            state = slot.builder.state()
            try:
                units = slot.builder.units_of(item)
            except StreamerError as exc:
                slot.builder.set_state(state)
                self._lose(slot, [item], str(exc), ErrorCode.INVALID_INPUT)
                continue
            if isinstance(item, QuestionItem):
                units[-1].question = True
            slot.ready += [_Entry(u, item, state) for u in units]

    def _prefill(self, slot: _Slot, max_tokens: int) -> None:
        inbox = slot.record.inbox
        ready_tokens = sum(e.unit.unit.tokens for e in slot.ready)
        if ready_tokens < max_tokens and not any(e.unit.question for e in slot.ready):
            self._build(slot, inbox.take(max_tokens - ready_tokens, at_least_one=not slot.ready))
        # The plan sized the chunk from estimates: what was taken for it goes in whole (a question is
        # not split over two forwards because it tokenized longer than estimated), up to one chunk.
        built = sum(e.unit.unit.tokens for e in slot.ready)
        limit = min(
            max(max_tokens, built if ready_tokens < max_tokens else 0),
            self.scheduler_config.prefill_chunk_tokens,
        )
        chunk: list[_Entry] = []
        tokens = 0
        for entry in slot.ready:
            if chunk and tokens + entry.unit.unit.tokens > limit:
                break
            chunk.append(entry)
            tokens += entry.unit.unit.tokens
            if entry.unit.question:
                break
        if not chunk:
            return
        del slot.ready[: len(chunk)]
        ctx = slot.context
        units = [e.unit for e in chunk]
        try:
            lay = slot.builder.lay_out(units, ctx.next_block)
            logits = ctx.prefill(lay, [u.unit for u in units])
        except Exception as exc:  # the context rolled back; undo the chat state and report what was lost
            full = isinstance(exc, SessionError) and "do not fit" in str(exc)
            if not isinstance(exc, StreamerError):
                message = f"model error during prefill: {exc!r}"
            else:
                message = str(exc)
            self._rollback_chunk(
                slot, chunk, message, ErrorCode.CONTEXT_FULL if full else ErrorCode.MODEL_ERROR
            )
            return
        self.metrics.prefill_tokens += len(lay)
        self._account(slot, chunk)
        if chunk[-1].unit.question:
            item = chunk[-1].item
            assert isinstance(item, QuestionItem)
            self._begin_answer(slot, item, logits)

    def _account(self, slot: _Slot, chunk: list[_Entry]) -> None:
        """Count the items whose last unit is now in the context (an item can span two chunks)."""
        record = slot.record
        finished = [
            e.item
            for i, e in enumerate(chunk)
            if (i + 1 == len(chunk) or chunk[i + 1].item is not e.item) and not _continues(e.item, slot)
        ]
        for item in finished:
            if isinstance(item, FrameItem):
                record.frames += 1
            elif isinstance(item, AudioItem):
                record.audio_s += seconds_of(item)
        record.inbox.done(sum(1 for item in finished if item is not _HEAD))
        self.update_figures(slot)

    def _rollback_chunk(self, slot: _Slot, chunk: list[_Entry], message: str, code: ErrorCode) -> None:
        lost: list[Item] = []
        for e in chunk:
            if not any(e.item is x for x in lost):
                lost.append(e.item)
        later: list[Item] = []
        for e in slot.ready:  # built after the lost items: rebuild them from the restored chat state
            if not any(e.item is x for x in lost + later):
                later.append(e.item)
        slot.ready = []
        slot.builder.set_state(chunk[0].chat_state)
        self._lose(slot, [i for i in lost if i is not _HEAD], message, code)
        if any(i is _HEAD for i in lost):
            slot.ready = [
                _Entry(u, _HEAD, (False, False)) for u in slot.builder.start(slot.record.config.system_prompt)
            ]
        self._build(slot, later)

    def _lose(self, slot: _Slot, items: list[Item], message: str, code: ErrorCode) -> None:
        record = slot.record
        for item in items:
            if isinstance(item, QuestionItem) and item.stream is not None:
                item.stream.finish(FinishReason.ERROR, message, code)
            else:
                record.report(
                    code, f"{type(item).__name__.removesuffix('Item').lower()} not added: {message}", item.seq
                )
        record.inbox.done(len(items))

    def update_figures(self, slot: _Slot) -> None:
        record, ctx = slot.record, slot.context
        record.context_tokens = ctx.context_tokens
        if ctx.evicted_tokens != record.evicted_tokens:
            self.metrics.evicted_tokens += ctx.evicted_tokens - record.evicted_tokens
        record.evicted_tokens, record.evictions = ctx.evicted_tokens, ctx.evictions
        record.kv_bytes = ctx.stats().kv_bytes_allocated

    # ---- answers -------------------------------------------------------------------------------
    def _begin_answer(self, slot: _Slot, item: QuestionItem, logits: torch.Tensor) -> None:
        stream = item.stream
        assert stream is not None
        stream.context_tokens = slot.context.context_tokens
        stream.evicted_tokens = slot.context.evicted_tokens
        if stream.finished:  # cancelled or closed while it waited
            return
        params = item.params
        try:
            constraint = self._constraint(params.choices)
            gen = None
            if params.temperature > 0:
                gen = torch.Generator(device=logits.device)
                gen.manual_seed(params.seed if params.seed is not None else int(torch.seed() % (2**63)))
        except StreamerError as exc:
            stream.finish(FinishReason.ERROR, str(exc), ErrorCode.INVALID_INPUT)
            return
        slot.answering = _Answering(stream, params, constraint, IncrementalDecoder(self.tokenizer), gen)
        slot.record.answering = True
        self._accept(slot, logits)

    def _constraint(self, choices: tuple[str, ...]) -> ChoiceConstraint | None:
        if not choices:
            return None
        if not self.stop_ids:
            raise InputError("choices need a stop token, and this checkpoint defines none")
        return ChoiceConstraint([self.tokenizer.encode(c) for c in choices], min(self.stop_ids))

    def _accept(self, slot: _Slot, logits: torch.Tensor) -> None:
        """Sample from ``logits``, stream the token, and finish or keep decoding."""
        ans = slot.answering
        assert ans is not None
        try:
            allowed = ans.constraint.allowed() if ans.constraint is not None else None
            token = sample(logits.float(), ans.params, ans.generator, allowed, self.banned_ids)
            complete = ans.constraint is not None and ans.constraint.advance(token)
            text = "" if token in self.stop_ids else ans.decoder.push(token)
        except Exception as exc:  # a sampling fault ends this answer only
            self._finish(slot, FinishReason.ERROR, f"sampling failed: {exc!r}", ErrorCode.MODEL_ERROR)
            return
        ans.generated += 1
        self.metrics.generated_tokens += 1
        if complete:
            if token not in self.stop_ids:
                ans.stream.put(text, [token])
                ans.next_token = token
                self._finish(slot, FinishReason.CHOICE, feed_last=True)
            else:
                self._finish(slot, FinishReason.CHOICE)
            return
        if token in self.stop_ids:
            self._finish(slot, FinishReason.STOP)
            return
        ans.stream.put(text, [token])
        ans.next_token = token
        if ans.generated >= ans.params.max_new_tokens:
            self._finish(slot, FinishReason.LENGTH, feed_last=True)

    def _decode(self, slots: list[_Slot]) -> None:
        ready: list[_Slot] = []
        for slot in slots:
            try:
                slot.context.reserve_decode()
                ready.append(slot)
            except StreamerError as exc:
                self._finish(slot, FinishReason.ERROR, str(exc), ErrorCode.CONTEXT_FULL)
        if not ready:
            return
        tokens = [s.answering.next_token for s in ready]  # type: ignore[union-attr]
        try:
            logits = decode_batch(self.model, [s.context for s in ready], tokens)
        except Exception as exc:  # every row was rolled back; end these answers, keep the sessions
            for slot in ready:
                self._finish(
                    slot, FinishReason.ERROR, f"model error during decode: {exc!r}", ErrorCode.MODEL_ERROR
                )
            return
        for slot, row in zip(ready, logits, strict=True):
            if slot.answering is not None:
                self._accept(slot, row)

    def _finish(
        self,
        slot: _Slot,
        reason: FinishReason,
        error: str | None = None,
        code: ErrorCode | None = None,
        feed_last: bool = False,
        context: bool = True,
    ) -> None:
        ans = slot.answering
        if ans is None:
            return
        slot.answering = None
        slot.record.answering = False
        if feed_last and context:
            # The last emitted token is part of the answer: put it in the context before the turn closes.
            try:
                decode_batch(self.model, [slot.context], [ans.next_token])
            except Exception as exc:  # rolled back; the answer itself is complete
                slot.record.report(ErrorCode.MODEL_ERROR, f"the answer's last token was not kept: {exc!r}")
        if context:
            slot.context.close_answer()
        ans.stream.finish(reason, error, code)
        self.metrics.answers += 1
        self.metrics.answer_errors += reason is FinishReason.ERROR
        self.update_figures(slot)


class _Head:
    """Marker item for the system-prompt units every session starts with."""

    seq = None
    nbytes = 0


_HEAD: Any = _Head()


def _continues(item: Item, slot: _Slot) -> bool:
    """Whether units of ``item`` are still waiting (a long text cut into several units)."""
    return any(e.item is item for e in slot.ready)
