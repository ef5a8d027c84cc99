"""One session's place in the model: its KV caches, counters and the units they hold.

Call order: :meth:`SessionContext.prefill` for each chunk of new units (it evicts first when
the budget would overflow), then :meth:`reserve_decode` + a batched forward +
:meth:`commit_decode` per generated token (see :func:`decode_batch`).

After an eviction the retained tokens are re-indexed to contiguous positions ``0 … n-1`` so a
stream of any length stays inside the model's trained position range; cached keys are
re-rotated exactly by the position change of each slot (``R(p − d) = R(−d) R(p)``, in fp32).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from streamer.engine.eviction import EvictionPolicy, Unit, UnitKind, plan_eviction
from streamer.errors import SessionError
from streamer.model.attention import TokenMeta
from streamer.model.cache import FullKVCache, LayerCache, SlidingKVCache, make_cache
from streamer.model.gemma4_unified import Gemma4Unified
from streamer.model.inputs import Layout, embed_layout

__all__ = ["ContextStats", "SessionContext", "decode_batch", "kv_bytes_per_token"]


def kv_bytes_per_token(model: Gemma4Unified, dtype: torch.dtype) -> int:
    """Bytes one token costs in the full-attention caches (sliding rings are a fixed cost)."""
    size = torch.tensor([], dtype=dtype).element_size()
    specs = model.config.text.layers
    return sum(
        2 * s.num_kv_heads * s.head_dim * size
        for i, s in enumerate(specs)
        if s.kv_source == i and s.layer_type == "full_attention"
    )


@dataclass
class ContextStats:
    """What a session's cache holds now."""

    context_tokens: int  # tokens in the full-attention cache
    evicted_tokens: int  # tokens dropped so far
    evictions: int  # eviction rounds so far
    kv_bytes_allocated: int  # bytes of all cache tensors (flat by construction)
    kv_bytes_used: int  # bytes of cache slots holding tokens


class SessionContext:
    """KV caches and bookkeeping of one session (not thread-safe: the engine thread owns it)."""

    def __init__(
        self, model: Gemma4Unified, policy: EvictionPolicy, dtype: torch.dtype, device: torch.device
    ):
        self.model = model
        self.policy = policy
        self.dtype = dtype
        self.device = device
        self.caches: list[LayerCache | None] | None = None  # allocated on first use
        self.units: list[Unit] = []  # units in the full-attention cache, in order
        self.next_seq = 0  # sequence index of the next token (never re-indexed)
        self.next_pos = 0  # RoPE position of the next token (re-indexed after eviction)
        self.next_block = 0  # id of the next bidirectional block
        self.evicted_tokens = 0
        self.evictions = 0
        self._answer: Unit | None = None  # the unit generated tokens are appended to

    # ---- bookkeeping ------------------------------------------------------------------------
    def ensure_caches(self) -> list[LayerCache | None]:
        if self.caches is None:
            self.caches = make_cache(self.model.config.text, self.policy.capacity, self.dtype, self.device)
        return self.caches

    @property
    def context_tokens(self) -> int:
        return sum(u.tokens for u in self.units)

    def stats(self) -> ContextStats:
        caches = [c for c in (self.caches or []) if c is not None]
        allocated = sum(c.nbytes for c in caches)
        used = 0
        for c in caches:
            filled = c.length if isinstance(c, FullKVCache) else c.filled
            used += c.nbytes * filled // max(c.capacity, 1)
        return ContextStats(self.context_tokens, self.evicted_tokens, self.evictions, allocated, used)

    def release(self) -> None:
        """Free the cache tensors (the session is closed)."""
        self.caches = None
        self.units = []

    # ---- eviction ---------------------------------------------------------------------------
    @torch.inference_mode()  # the caches are inference tensors; Engine._decode calls this outside a forward
    def make_room(self, incoming: int) -> None:
        """Evict (per the policy) so that ``incoming`` tokens fit; SessionError if they cannot."""
        keep = plan_eviction(self.units, incoming, self.policy)
        if keep is None:
            raise SessionError(
                f"{incoming} new tokens do not fit the session's context budget of {self.policy.capacity} tokens "
                "(pinned and recent tokens cannot be evicted)"
            )
        if all(keep):
            return
        slot_keep = torch.cat(
            [torch.full((u.tokens,), k, dtype=torch.bool) for u, k in zip(self.units, keep, strict=True)]
        ).to(self.device)
        self.evicted_tokens += sum(u.tokens for u, k in zip(self.units, keep, strict=True) if not k)
        self.evictions += 1
        self.units = [u for u, k in zip(self.units, keep, strict=True) if k]
        self._compact(slot_keep)

    def _compact(self, slot_keep: torch.Tensor) -> None:
        caches = self.ensure_caches()
        lm = self.model.model.language_model
        specs = self.model.config.text.layers
        kept_seq: torch.Tensor | None = None
        for i, cache in enumerate(caches):
            if isinstance(cache, FullKVCache):
                cache.keep(slot_keep)
                n = cache.length
                delta = cache.positions[0, :n] - torch.arange(n, device=self.device)
                cache.rerotate(lm.rotary(specs[i].layer_type), delta, slice(0, n))
                kept_seq = cache.seq_index[0, :n]
        assert kept_seq is not None, "a model always has a full-attention layer"
        for i, cache in enumerate(caches):
            if isinstance(cache, SlidingKVCache):
                seq = cache.seq_index[0]
                filled = seq >= 0
                new_pos = torch.searchsorted(kept_seq, seq.clamp(min=0))
                if bool((kept_seq[new_pos.clamp(max=len(kept_seq) - 1)] != seq)[filled].any()):
                    raise AssertionError("a sliding-window token was evicted from the full cache")
                delta = torch.where(filled, cache.positions[0] - new_pos, torch.zeros_like(seq))
                cache.rerotate(lm.rotary(specs[i].layer_type), delta, slice(0, cache.capacity))
        self.next_pos = int(kept_seq.numel())

    # ---- prefill / decode -------------------------------------------------------------------
    def token_meta(self, lay: Layout) -> TokenMeta:
        """Metadata for ``lay`` appended at the current counters (block ids already absolute)."""
        n = len(lay)
        pos = torch.arange(self.next_pos, self.next_pos + n, device=self.device)[None]
        seq = torch.arange(self.next_seq, self.next_seq + n, device=self.device)[None]
        blocks = torch.tensor(lay.block_ids, dtype=torch.long, device=self.device)[None]
        return TokenMeta(positions=pos, seq_index=seq, block_ids=blocks)

    @torch.inference_mode()
    def prefill(self, lay: Layout, units: list[Unit]) -> torch.Tensor:
        """Append ``lay`` (made of ``units``, in order) to the context; logits ``[vocab]`` of its last token.

        All or nothing: if the forward fails, the caches are rolled back to where they stood
        after any eviction it needed (a consistent state) and the error propagates.
        """
        n = len(lay)
        if n != sum(u.tokens for u in units):
            raise ValueError("units do not cover the layout")
        self.make_room(n)
        caches = self.ensure_caches()
        point = self.checkpoint(n)
        try:
            embeds = embed_layout(self.model, lay, self.device)[None].to(self.dtype)
            hidden = self.model(embeds, self.token_meta(lay), [caches])
            logits = self.model.logits(hidden[0, -1])
        except BaseException:
            self.rollback(point)
            raise
        self._advance(n, lay)
        self.units.extend(units)
        return logits

    def checkpoint(self, incoming: int) -> list[object]:
        """Restore points of every cache before ``incoming`` tokens are written (bookkeeping moves after)."""
        return [None if c is None else c.checkpoint(incoming) for c in self.ensure_caches()]

    @torch.inference_mode()
    def rollback(self, point: list[object]) -> None:
        for cache, saved in zip(self.ensure_caches(), point, strict=True):
            if cache is not None:
                cache.rollback(saved)  # type: ignore[arg-type]

    def _advance(self, n: int, lay: Layout | None = None) -> None:
        self.next_seq += n
        self.next_pos += n
        if lay is not None:
            blocks = [b for b in lay.block_ids if b >= 0]
            if blocks:
                self.next_block = max(self.next_block, max(blocks) + 1)

    def reserve_decode(self) -> None:
        """Make room for one generated token (call before the batched forward)."""
        self.make_room(1)
        self.ensure_caches()

    def commit_decode(self) -> None:
        """The generated token is in the caches: account for it in the open answer unit."""
        self._advance(1)
        if self._answer is None or self._answer not in self.units:
            self._answer = Unit(UnitKind.TEXT, 0, label="answer")
            self.units.append(self._answer)
        self._answer.tokens += 1

    def close_answer(self) -> None:
        """The answer ended: later tokens start new units."""
        self._answer = None


@torch.inference_mode()
def decode_batch(model: Gemma4Unified, contexts: list[SessionContext], tokens: list[int]) -> torch.Tensor:
    """Feed one token to each context in one batched forward; logits ``[B, vocab]``."""
    for ctx in contexts:
        ctx.reserve_decode()
    points = [ctx.checkpoint(1) for ctx in contexts]
    try:
        logits = _decode_forward(model, contexts, tokens)
    except BaseException:
        for ctx, point in zip(contexts, points, strict=True):
            ctx.rollback(point)
        raise
    for ctx in contexts:
        ctx.commit_decode()
    return logits


def _decode_forward(model: Gemma4Unified, contexts: list[SessionContext], tokens: list[int]) -> torch.Tensor:
    device = contexts[0].device
    ids = torch.tensor(tokens, device=device)[:, None]
    meta = TokenMeta(
        positions=torch.tensor([c.next_pos for c in contexts], device=device)[:, None],
        seq_index=torch.tensor([c.next_seq for c in contexts], device=device)[:, None],
        block_ids=torch.full((len(contexts), 1), -1, dtype=torch.long, device=device),
    )
    hidden = model(model.embed_tokens(ids).to(contexts[0].dtype), meta, [c.caches for c in contexts])
    return model.logits(hidden[:, -1])
