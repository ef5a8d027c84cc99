"""Preallocated KV caches; the model says which kind each layer needs (:func:`make_cache`).

Two kinds share one small interface, ``update(keys, values, meta) -> KVView``:

* :class:`FullKVCache`  a fixed-capacity buffer for full-attention layers. Slots are appended in
  order; the engine frees room with :meth:`FullKVCache.keep` (eviction) before it runs out.
  Running out is a return value (:meth:`free_slots`), never a silent overwrite.
* :class:`SlidingKVCache`  a ring of ``window`` slots for sliding-window layers: memory is flat
  whatever the stream's length.

Keys are stored rotated (RoPE applied at their position). When the engine re-indexes positions
after an eviction it calls :meth:`rerotate` with the per-slot position change, which applies the
exact inverse rotation ``R(p - d) = R(-d) R(p)`` in fp32.
"""

from __future__ import annotations

import torch

from streamer.model.attention import KVView, RotaryEmbedding, TokenMeta, apply_rotary
from streamer.model.config import TextConfig

__all__ = ["FullKVCache", "SlidingKVCache", "LayerCache", "make_cache"]


class _KVStore:
    """Buffers shared by both cache kinds: keys, values and per-slot metadata for batch row 0."""

    def __init__(self, capacity: int, kv_heads: int, head_dim: int, dtype: torch.dtype, device: torch.device):
        self.capacity = capacity
        self.keys = torch.zeros(1, kv_heads, capacity, head_dim, dtype=dtype, device=device)
        self.values = torch.zeros_like(self.keys)
        self.seq_index = torch.full((1, capacity), -1, dtype=torch.long, device=device)
        self.positions = torch.full((1, capacity), -1, dtype=torch.long, device=device)
        self.block_ids = torch.full((1, capacity), -1, dtype=torch.long, device=device)

    @property
    def nbytes(self) -> int:
        """Bytes held by this cache's tensors."""
        return sum(
            t.numel() * t.element_size()
            for t in (self.keys, self.values, self.seq_index, self.positions, self.block_ids)
        )

    def write(
        self, slots: torch.Tensor | slice, keys: torch.Tensor, values: torch.Tensor, meta: TokenMeta
    ) -> None:
        self.keys[:, :, slots] = keys
        self.values[:, :, slots] = values
        self.seq_index[:, slots] = meta.seq_index
        self.positions[:, slots] = meta.positions
        self.block_ids[:, slots] = meta.block_ids

    def _save_slots(self, slots: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(
            buf[:, :, slots].clone() if buf.dim() == 4 else buf[:, slots].clone()
            for buf in (self.keys, self.values, self.seq_index, self.positions, self.block_ids)
        )

    def _load_slots(self, slots: torch.Tensor, saved: tuple[torch.Tensor, ...]) -> None:
        for buf, old in zip(
            (self.keys, self.values, self.seq_index, self.positions, self.block_ids), saved, strict=True
        ):
            if buf.dim() == 4:
                buf[:, :, slots] = old
            else:
                buf[:, slots] = old

    def view(self, n: int) -> KVView:
        """Slots ``[0, n)`` as a :class:`KVView` (no copies)."""
        used = slice(0, n)
        return KVView(
            self.keys[:, :, used],
            self.values[:, :, used],
            self.seq_index[:, used],
            self.block_ids[:, used],
            None,
        )

    def rerotate(self, rope: RotaryEmbedding, delta: torch.Tensor, slots: slice) -> None:
        """Move the keys in ``slots`` from position p to p - delta (delta: long ``[n]``)."""
        cos, sin = rope(-delta[None, :], torch.float32)  # [1, n, D]
        k = self.keys[:, :, slots].float()
        self.keys[:, :, slots] = apply_rotary(k, cos, sin, head_axis=1).to(self.keys.dtype)
        self.positions[:, slots] -= delta[None, :]


class FullKVCache(_KVStore):
    """Append-only buffer of ``capacity`` slots for one full-attention layer of one session."""

    def __init__(self, capacity: int, kv_heads: int, head_dim: int, dtype: torch.dtype, device: torch.device):
        super().__init__(capacity, kv_heads, head_dim, dtype, device)
        self.length = 0  # slots in use: [0, length)

    def free_slots(self) -> int:
        return self.capacity - self.length

    def update(self, keys: torch.Tensor, values: torch.Tensor, meta: TokenMeta) -> KVView:
        """Append ``keys/values [1, Hkv, S, D]``; return every slot in use (the new ones included)."""
        n = keys.shape[2]
        if n > self.free_slots():
            raise RuntimeError(
                f"KV cache overflow: {n} new tokens, {self.free_slots()} free slots (evict first)"
            )
        self.write(slice(self.length, self.length + n), keys, values, meta)
        self.length += n
        return self.view(self.length)

    def checkpoint(self, incoming: int) -> int:
        """A restore point before appending ``incoming`` tokens (appends never overwrite: the length)."""
        return self.length

    def rollback(self, point: int) -> None:
        """Forget everything appended since :meth:`checkpoint` returned ``point``."""
        for meta in (self.seq_index, self.positions, self.block_ids):
            meta[:, point:] = -1
        self.length = point

    def keep(self, keep: torch.Tensor) -> None:
        """Compact the buffer to the slots where ``keep [length]`` is True, preserving order."""
        idx = torch.nonzero(keep[: self.length], as_tuple=False).flatten()
        n = idx.numel()
        for buf in (self.keys, self.values):
            buf[:, :, :n] = buf[:, :, idx]
        for meta in (self.seq_index, self.positions, self.block_ids):
            meta[:, :n] = meta[:, idx]
            meta[:, n:] = -1
        self.length = n


class SlidingKVCache(_KVStore):
    """Ring of ``window`` slots for one sliding-window layer of one session."""

    def __init__(self, window: int, kv_heads: int, head_dim: int, dtype: torch.dtype, device: torch.device):
        super().__init__(window, kv_heads, head_dim, dtype, device)
        self.next_slot = 0  # ring write pointer
        self.filled = 0  # slots holding a token

    def update(self, keys: torch.Tensor, values: torch.Tensor, meta: TokenMeta) -> KVView:
        """Attend over the filled ring slots plus the new tokens, then keep the newest ``window`` of them."""
        n = keys.shape[2]
        if n == 1:
            # Decode: the slot overwritten holds the token `window` steps back, outside the window.
            self._write_ring(keys, values, meta)
            return self.view(self.filled)
        if self.filled == 0:  # a fresh ring adds nothing: attend to the chunk alone
            view = KVView(keys, values, meta.seq_index, meta.block_ids, None)
        else:
            # Writes start at slot 0, so the filled slots are [0, filled) until the ring wraps, then all.
            ring = self.view(self.filled)
            view = KVView(
                torch.cat([ring.keys, keys], dim=2),
                torch.cat([ring.values, values], dim=2),
                torch.cat([ring.seq_index, meta.seq_index], dim=1),
                torch.cat([ring.block_ids, meta.block_ids], dim=1),
                None,
            )
        tail = min(n, self.capacity)
        tail_meta = TokenMeta(meta.positions[:, -tail:], meta.seq_index[:, -tail:], meta.block_ids[:, -tail:])
        self._write_ring(keys[:, :, -tail:], values[:, :, -tail:], tail_meta)
        return view

    def checkpoint(self, incoming: int) -> tuple[int, int, torch.Tensor, tuple[torch.Tensor, ...]]:
        """A restore point before writing ``incoming`` tokens: the pointers and the slots they overwrite."""
        n = min(incoming, self.capacity)
        slots = (torch.arange(n, device=self.keys.device) + self.next_slot) % self.capacity
        return self.next_slot, self.filled, slots, self._save_slots(slots)

    def rollback(self, point: tuple[int, int, torch.Tensor, tuple[torch.Tensor, ...]]) -> None:
        """Undo the writes since :meth:`checkpoint` (a failed forward leaves no trace)."""
        self.next_slot, self.filled, slots, saved = point
        self._load_slots(slots, saved)

    def _write_ring(self, keys: torch.Tensor, values: torch.Tensor, meta: TokenMeta) -> None:
        n = keys.shape[2]
        if self.next_slot + n <= self.capacity:  # no wrap: a plain slice copy, no index tensor
            slots: torch.Tensor | slice = slice(self.next_slot, self.next_slot + n)
        else:
            slots = (torch.arange(n, device=keys.device) + self.next_slot) % self.capacity
        self.write(slots, keys, values, meta)
        self.next_slot = (self.next_slot + n) % self.capacity
        self.filled = min(self.capacity, self.filled + n)


LayerCache = FullKVCache | SlidingKVCache


def make_cache(
    config: TextConfig, full_capacity: int, dtype: torch.dtype, device: torch.device | str
) -> list[LayerCache | None]:
    """One cache per layer that produces K/V (None for layers that reuse another layer's K/V).

    ``full_capacity`` is the token budget of the full-attention layers; sliding layers get a ring
    of the model's window.
    """
    device = torch.device(device)
    caches: list[LayerCache | None] = []
    for i, spec in enumerate(config.layers):
        if spec.kv_source != i:
            caches.append(None)
        elif spec.layer_type == "sliding_attention":
            caches.append(
                SlidingKVCache(
                    config.effective_sliding_window, spec.num_kv_heads, spec.head_dim, dtype, device
                )
            )
        else:
            caches.append(FullKVCache(full_capacity, spec.num_kv_heads, spec.head_dim, dtype, device))
    return caches
