"""Next-token choice: greedy, temperature, top-k, top-p, and answers forced into a list of choices.

:func:`sample` takes logits ``[vocab]`` and :class:`SamplingParams`; a :class:`ChoiceConstraint`
(a token trie of the allowed answers) masks logits step by step so the answer is exactly one
of the choices, whatever the model prefers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from streamer.engine.protocol import SamplingParams
from streamer.errors import InputError

__all__ = ["SamplingParams", "ChoiceConstraint", "sample"]


class ChoiceConstraint:
    """A trie over the token ids of each choice; walk it one generated token at a time."""

    def __init__(self, choice_ids: Sequence[Sequence[int]], end_id: int):
        if not choice_ids or any(len(c) == 0 for c in choice_ids):
            raise InputError("every choice must tokenize to at least one token")
        self.end_id = end_id
        self._root: dict[int, dict] = {}
        for ids in choice_ids:
            node = self._root
            for t in ids:
                node = node.setdefault(t, {})
            node[-1] = {}  # -1 marks "a choice may end here"
        self._node = self._root

    def allowed(self) -> list[int]:
        """Token ids allowed next (the end id where a choice is complete)."""
        return [self.end_id if t == -1 else t for t in self._node]

    def advance(self, token: int) -> bool:
        """Follow ``token``; True when the answer is complete."""
        if token == self.end_id and -1 in self._node:
            return True
        self._node = self._node[token]
        return list(self._node) == [-1]


def _filter_top_k_top_p(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    if top_k > 0 and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        # Drop a token once the mass before it already reaches top_p (the first always stays).
        drop = probs.cumsum(-1) - probs >= top_p
        logits = logits.masked_fill(drop.scatter(0, order, drop), float("-inf"))
    return logits


def sample(
    logits: torch.Tensor,
    params: SamplingParams,
    generator: torch.Generator | None = None,
    allowed: list[int] | None = None,
    banned: list[int] | None = None,
) -> int:
    """Pick the next token from fp32 ``logits [vocab]``; only ``allowed`` ids, never ``banned`` ones."""
    if banned:
        logits = logits.index_fill(0, torch.tensor(banned, device=logits.device), float("-inf"))
    if allowed is not None:
        mask = torch.full_like(logits, float("-inf"))
        idx = torch.tensor(allowed, device=logits.device)
        mask[idx] = 0.0
        logits = logits + mask
    if params.temperature == 0.0:
        return int(torch.argmax(logits))
    logits = _filter_top_k_top_p(logits / params.temperature, params.top_k, params.top_p)
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))
