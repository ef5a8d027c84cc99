"""Which context to forget when a session's KV budget is full (plain data, no torch).

The full-attention cache holds *units*: a text span (a chat turn, a question, an answer), an
audio segment (``<boa> … <eoa>``), or one video frame (``mm:ss <boi> … <eoi>``). Units are
dropped whole, never split (an image block attends to itself both ways).

Policy, when the cache would pass ``capacity`` tokens, evict down to ``target`` tokens:

1. never: pinned units (attention sinks = the first units, and the system prompt), and the
   units overlapping the most recent ``protect_recent`` tokens (at least the sliding window);
2. first the oldest vision units, then the oldest audio units, then the oldest text units —
   retention by modality: pictures go first, speech lasts longer, the Q&A and notes longest.

Running out of room (nothing left to evict) is a return value: :func:`plan_eviction` returns
None and the caller refuses the input.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["UnitKind", "Unit", "EvictionPolicy", "plan_eviction"]


class UnitKind(enum.IntEnum):
    """Eviction order: lower values go first."""

    VISION = 0
    AUDIO = 1
    TEXT = 2


@dataclass(eq=False)  # identity: two equal-looking spans are still different spans
class Unit:
    """A span of consecutive tokens in the full-attention cache."""

    kind: UnitKind
    tokens: int  # length in tokens
    pinned: bool = False  # never evicted (sinks, system prompt)
    label: str = ""  # for logs and tests, e.g. "frame 00:12"


@dataclass(frozen=True)
class EvictionPolicy:
    """Budget of one session's full-attention cache."""

    capacity: int  # tokens the cache may hold (the session's max_context_tokens)
    target: int  # tokens left after an eviction (hysteresis: evict rarely, in batches)
    protect_recent: int  # most recent tokens that are never evicted (>= sliding window)

    def __post_init__(self) -> None:
        if not 0 < self.target <= self.capacity:
            raise ValueError("eviction target must be in (0, capacity]")


def plan_eviction(units: list[Unit], incoming: int, policy: EvictionPolicy) -> list[bool] | None:
    """Keep-flags for ``units`` so that ``incoming`` more tokens fit; None if they cannot.

    Returns all-True when nothing needs to go.
    """
    used = sum(u.tokens for u in units)
    if used + incoming <= policy.capacity:
        return [True] * len(units)
    goal = min(policy.target, policy.capacity - incoming)
    if goal < 0:
        return None
    protected = [u.pinned for u in units]
    recent = 0
    for i in range(len(units) - 1, -1, -1):
        if recent >= policy.protect_recent:
            break
        protected[i] = True
        recent += units[i].tokens
    keep = [True] * len(units)
    for kind in UnitKind:
        for i, unit in enumerate(units):
            if used <= goal:
                return keep
            if unit.kind == kind and not protected[i]:
                keep[i] = False
                used -= unit.tokens
    if used + incoming <= policy.capacity:
        return keep
    return None
