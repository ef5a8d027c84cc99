"""The decode loop's phases as small functions: ``prefill``, ``decode_step``, ``greedy_generate``.

All take explicit caches (one list of per-layer caches per batch row) and explicit metadata;
batching across sessions is the caller's business (:mod:`streamer.engine.scheduler`).
"""

from __future__ import annotations

import torch

from streamer.model.attention import TokenMeta
from streamer.model.cache import LayerCache
from streamer.model.gemma4_unified import Gemma4Unified

__all__ = ["prefill", "decode_step", "greedy_generate"]


@torch.inference_mode()
def prefill(
    model: Gemma4Unified, embeds: torch.Tensor, meta: TokenMeta, caches: list[list[LayerCache | None]]
) -> torch.Tensor:
    """Run ``embeds [B, S, hidden]`` through the model into ``caches``; logits of the last token ``[B, vocab]``."""
    hidden = model(embeds, meta, caches)
    return model.logits(hidden[:, -1])


@torch.inference_mode()
def decode_step(
    model: Gemma4Unified,
    tokens: torch.Tensor,
    seq_index: torch.Tensor,
    positions: torch.Tensor,
    caches: list[list[LayerCache | None]],
) -> torch.Tensor:
    """One token per row: ``tokens, seq_index, positions [B]`` → logits ``[B, vocab]``."""
    embeds = model.embed_tokens(tokens[:, None])
    meta = TokenMeta(
        positions=positions[:, None],
        seq_index=seq_index[:, None],
        block_ids=torch.full_like(tokens[:, None], -1),
    )
    return model.logits(model(embeds, meta, caches)[:, -1])


@torch.inference_mode()
def greedy_generate(
    model: Gemma4Unified,
    embeds: torch.Tensor,
    meta: TokenMeta,
    caches: list[list[LayerCache | None]],
    max_new_tokens: int,
    stop_ids: frozenset[int] = frozenset(),
) -> list[int]:
    """Greedy tokens for one sequence (batch of one): prefill, then ``max_new_tokens`` decode steps."""
    logits = prefill(model, embeds, meta, caches)
    next_seq = int(meta.seq_index[0, -1]) + 1
    next_pos = int(meta.positions[0, -1]) + 1
    out: list[int] = []
    for step in range(max_new_tokens):
        token = int(logits[0].argmax())
        out.append(token)
        if token in stop_ids or step == max_new_tokens - 1:
            break
        t = torch.tensor([token], device=embeds.device)
        logits = decode_step(
            model,
            t,
            torch.tensor([next_seq], device=embeds.device),
            torch.tensor([next_pos], device=embeds.device),
            caches,
        )
        next_seq += 1
        next_pos += 1
    return out
