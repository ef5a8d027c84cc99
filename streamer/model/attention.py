"""Token metadata, rotary embeddings and the attention masks of Gemma 4 Unified.

Every token carries three integers besides its embedding (see :class:`TokenMeta`):

* ``positions``  RoPE position (re-indexed by the engine after eviction),
* ``seq_index``  its place in the session's sequence (never changes; defines causality and windows),
* ``block_ids``  -1 for text/audio, else the id of the image/video-frame block it belongs to
  (tokens of one block attend to each other both ways).

Masks are built from these, never from tensor offsets, so the same code serves a whole-sequence
forward, a prefill chunk against a cache, a decode step and a cache with holes left by eviction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from streamer.model.config import TextConfig

__all__ = ["CAUSAL", "TokenMeta", "RotaryEmbedding", "apply_rotary", "build_mask", "KVView"]

CAUSAL = "causal"  # build_mask's answer when the mask is exactly the square causal one (SDPA's fast path)


@dataclass
class TokenMeta:
    """Per-token metadata of a batch of query tokens; every tensor is ``[B, S]``."""

    positions: torch.Tensor  # long, RoPE positions
    seq_index: torch.Tensor  # long, order in the session (causality, sliding window)
    block_ids: torch.Tensor  # long, -1 = causal token, k >= 0 = member of bidirectional block k
    valid: torch.Tensor | None = None  # bool, False = padding (batch of unequal lengths)

    @staticmethod
    def contiguous(batch: int, length: int, start: int = 0, device: torch.device | str = "cpu") -> TokenMeta:
        """Metadata of plain causal text at positions ``start .. start+length-1``."""
        idx = torch.arange(start, start + length, device=device).expand(batch, length)
        return TokenMeta(positions=idx, seq_index=idx, block_ids=torch.full_like(idx, -1))

    def row(self, b: int) -> TokenMeta:
        sl = slice(b, b + 1)
        return TokenMeta(
            self.positions[sl],
            self.seq_index[sl],
            self.block_ids[sl],
            None if self.valid is None else self.valid[sl],
        )


@dataclass
class KVView:
    """Keys/values a layer attends to, with the metadata of each slot; ``[B, Hkv, T, D]`` and ``[B, T]``."""

    keys: torch.Tensor
    values: torch.Tensor
    seq_index: torch.Tensor  # long [B, T]
    block_ids: torch.Tensor  # long [B, T]
    valid: torch.Tensor | None  # bool [B, T]; None = all slots valid


class RotaryEmbedding(torch.nn.Module):
    """RoPE tables for one layer type: ``default``, ``linear`` or ``proportional`` (partial)."""

    inv_freq: torch.Tensor  # float [head_dim // 2], a non-persistent buffer

    def __init__(self, config: TextConfig, layer_type: str):
        super().__init__()
        theta, head_dim, factor, rotated = config.rope_dims(layer_type)
        exponents = torch.arange(0, 2 * rotated, 2, dtype=torch.int64).float() / head_dim
        inv_freq = 1.0 / (theta**exponents)
        if rotated < head_dim // 2:  # proportional RoPE: the remaining pairs are not rotated
            inv_freq = torch.cat([inv_freq, torch.zeros(head_dim // 2 - rotated)])
        self.register_buffer("inv_freq", inv_freq / factor, persistent=False)

    def forward(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin of shape ``[B, S, head_dim]`` for integer ``positions [B, S]``."""
        freqs = positions[..., None].float() * self.inv_freq.float()
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(dtype), emb.sin().to(dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, head_axis: int) -> torch.Tensor:
    """Rotate ``x`` (``[B, S, H, D]`` with head_axis=2, or ``[B, H, S, D]`` with head_axis=1)."""
    cos, sin = cos.unsqueeze(head_axis), sin.unsqueeze(head_axis)
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


def build_mask(
    q: TokenMeta, kv: KVView, *, sliding_window: int | None, bidirectional: str | None
) -> torch.Tensor | str | None:
    """Boolean attention mask ``[B, 1, S, T]`` (True = attend), None when every pair may attend,
    or :data:`CAUSAL` when the queries are exactly the keys and plain causality is the rule.

    ``bidirectional`` is the config's ``use_bidirectional_attention``: None (causal), "vision"
    (causal, plus both ways inside an image/frame block) or "all" (no causality).
    """
    n = q.seq_index.shape[1]
    if (
        bidirectional != "all"
        and kv.valid is None
        and q.valid is None
        and kv.seq_index.shape[1] == n
        and (sliding_window is None or sliding_window >= n)
        and torch.equal(q.seq_index, kv.seq_index)
        and (bidirectional != "vision" or not bool((q.block_ids >= 0).any()))
    ):
        return CAUSAL
    q_seq = q.seq_index[:, :, None]  # [B, S, 1]
    kv_seq = kv.seq_index[:, None, :]  # [B, 1, T]
    if bidirectional == "all":
        allowed = (
            (q_seq - kv_seq).abs() <= sliding_window
            if sliding_window is not None
            else torch.ones_like(q_seq - kv_seq, dtype=torch.bool)
        )
    else:
        allowed = kv_seq <= q_seq
        if sliding_window is not None:
            allowed = allowed & (kv_seq > q_seq - sliding_window)
        if bidirectional == "vision":
            q_block = q.block_ids[:, :, None]
            allowed = allowed | ((kv.block_ids[:, None, :] == q_block) & (q_block >= 0))
    if kv.valid is not None:
        allowed = allowed & kv.valid[:, None, :]
        if q.valid is not None:
            # A padding query keeps itself so its (discarded) softmax row is never empty.
            allowed = allowed | ((kv_seq == q_seq) & ~q.valid[:, :, None])
    if bool(allowed.all()):
        return None
    return allowed[:, None]
