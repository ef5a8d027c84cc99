"""Which sessions run in the next engine step (plain data: no torch, no model).

Every step batches the decode of all answering sessions together (up to ``max_decode_batch``,
rotating when more are waiting) and adds prefill chunks so that one session's big ingest never
stalls another's answer: while anyone decodes, one chunk of at most ``decode_prefill_tokens``
is prefilled per step (a token budget, as vLLM's chunked prefill sizes work per step, so the gap
between two tokens of an answer stays short); when no one decodes, up to
``idle_prefill_chunks`` chunks of ``prefill_chunk_tokens`` are.
Sessions whose question waits behind their pending media go first (time to first token).
A chunk never splits a unit (an image block is bidirectional and must be prefilled whole).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SchedulerConfig", "SessionView", "SchedulerOutput", "Scheduler"]


@dataclass(frozen=True)
class SchedulerConfig:
    max_decode_batch: int = 16  # sessions decoded in one forward
    prefill_chunk_tokens: int = 512  # tokens per prefill chunk (a bigger unit goes alone)
    idle_prefill_chunks: int = 4  # chunks per step when no session decodes
    decode_prefill_tokens: int = 128  # prefill tokens per step while any session decodes


@dataclass(frozen=True)
class SessionView:
    """What the scheduler knows of one session."""

    session_id: str
    pending_units: tuple[int, ...]  # token counts of units waiting for prefill, in order
    question_pending: bool  # a question is among the pending units
    decoding: bool  # an answer is being generated (pending media waits until it ends)


@dataclass
class SchedulerOutput:
    decode: list[str] = field(default_factory=list)  # session ids, one token each
    prefill: list[tuple[str, int]] = field(default_factory=list)  # (session id, tokens: whole units)

    @property
    def is_empty(self) -> bool:
        return not self.decode and not self.prefill


class Scheduler:
    def __init__(self, config: SchedulerConfig | None = None):
        self.config = config or SchedulerConfig()
        self._decode_turn = 0  # rotation offset for decode batches larger than the cap
        self._prefill_turn = 0  # rotation offset among ingesting sessions

    def schedule(self, sessions: list[SessionView]) -> SchedulerOutput:
        cfg = self.config
        out = SchedulerOutput()
        decoding = [s.session_id for s in sessions if s.decoding]
        if len(decoding) > cfg.max_decode_batch:
            start = self._decode_turn % len(decoding)
            decoding = (decoding[start:] + decoding[:start])[: cfg.max_decode_batch]
            self._decode_turn += cfg.max_decode_batch
        out.decode = decoding
        ready = [s for s in sessions if s.pending_units and not s.decoding]
        if not ready:
            return out
        # Questions first, then the others in rotation.
        urgent = [s for s in ready if s.question_pending]
        rest = [s for s in ready if not s.question_pending]
        if rest:
            start = self._prefill_turn % len(rest)
            rest = rest[start:] + rest[:start]
            self._prefill_turn += 1
        chunks = 1 if out.decode else cfg.idle_prefill_chunks
        limit = (
            min(cfg.decode_prefill_tokens, cfg.prefill_chunk_tokens)
            if out.decode
            else cfg.prefill_chunk_tokens
        )
        for view in urgent + rest:
            if len(out.prefill) >= chunks:
                break
            taken, tokens = 0, 0
            for size in view.pending_units:
                if taken and tokens + size > limit:
                    break
                taken += 1
                tokens += size
            out.prefill.append((view.session_id, tokens))
        return out
