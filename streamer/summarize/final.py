"""The final summary: in the session when all notes are still in its context, else hierarchically.

The notes are text, which the eviction policy keeps longest, so the session usually still holds
them all when the recording ends: the summary question is then asked there (level 0). When the
notes may have outgrown the budget (:func:`notes_fit`), the notes are condensed in groups, each
in a fresh session (``merge`` prompt, at most half the group's tokens), level after level,
until they fit one fresh session that is asked the summary question (levels >= 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from streamer.engine.session import Answer, Session, SessionConfig
from streamer.model.preprocess import mmss
from streamer.summarize.budget import MARGIN, notes_fit
from streamer.summarize.options import SummarizeOptions
from streamer.summarize.prompts import fill
from streamer.summarize.result import Note

if TYPE_CHECKING:
    from streamer.engine.engine import Engine

__all__ = ["FinalSummary", "final_summary", "hierarchical_summary"]

AskFn = Callable[[Session, str, int], Answer]  # (session, question, max_new_tokens) → finished answer
_MAX_LEVELS = 12  # condensing levels before the rest is cut (never reached with sane budgets)


@dataclass
class FinalSummary:
    text: str  # the model's summary
    levels: int  # 0: asked in the session; n: condensing levels before it
    generated: int  # tokens generated (the summary and every condensed group)


def final_summary(
    engine: Engine, session: Session, notes: list[Note], options: SummarizeOptions, *, budget: int,
    text_tokens: int, values: dict[str, str], ask: AskFn,
) -> FinalSummary:  # fmt: skip
    """Ask for the summary in ``session`` if the notes fit (it is closed either way), else condense."""
    question = fill(options.prompts.summary, **values)
    q_tokens = len(engine.tokenizer.encode(question))
    if notes_fit(engine, budget, text_tokens, q_tokens, options.summary_tokens):
        answer = ask(session, question, options.summary_tokens)
        session.close()
        return FinalSummary(answer.text, 0, len(answer.token_ids))
    session.close()
    return hierarchical_summary(engine, notes, options, budget=budget, question=question, ask=ask)


def _line(start_s: float, end_s: float, text: str) -> str:
    return f"[{mmss(start_s)}–{mmss(end_s)}] {text.strip()}"


@dataclass
class _Item:
    start_s: float  # seconds
    end_s: float  # seconds
    text: str  # one line: "[mm:ss–mm:ss] notes"
    tokens: int  # tokens of text


def hierarchical_summary(
    engine: Engine, notes: list[Note], options: SummarizeOptions, *, budget: int, question: str, ask: AskFn
) -> FinalSummary:
    """Condense ``notes`` group by group in fresh sessions until they fit, then ask ``question``."""
    tok = engine.tokenizer
    system = len(tok.encode(options.prompts.system))
    merge_q = len(tok.encode(fill(options.prompts.merge, start="00:00", end="00:00")))
    room_merge = budget - options.merge_tokens - merge_q - system - MARGIN
    room_final = budget - options.summary_tokens - len(tok.encode(question)) - system - MARGIN
    item_cap = max(room_merge // 2, 16)

    def item(start: float, end: float, text: str) -> _Item:
        line = _line(start, end, text)
        ids = tok.encode(line)
        if len(ids) > item_cap:
            line = tok.decode(ids[:item_cap])
        return _Item(start, end, line, min(len(ids), item_cap))

    items = [item(n.start_s, n.end_s, n.text) for n in notes]
    levels = generated = 0
    while sum(i.tokens for i in items) > room_final and len(items) > 1 and levels < _MAX_LEVELS:
        levels += 1
        condensed = []
        for group in _groups(items, room_merge):
            size = sum(i.tokens for i in group)
            cap = max(16, min(options.merge_tokens, size // 2, item_cap - 16))
            start, end = group[0].start_s, group[-1].end_s
            merge = fill(options.prompts.merge, start=mmss(start), end=mmss(end))
            answer = _fresh_ask(engine, options, budget, group, merge, cap, ask)
            generated += len(answer.token_ids)
            condensed.append(item(start, end, answer.text))
        items = condensed
    kept, total = [], 0
    for i in items:  # only if the levels ran out: keep what fits
        if total + i.tokens > room_final:
            break
        kept.append(i)
        total += i.tokens
    answer = _fresh_ask(engine, options, budget, kept, question, options.summary_tokens, ask)
    return FinalSummary(answer.text, max(levels, 1), generated + len(answer.token_ids))


def _groups(items: list[_Item], room: int) -> list[list[_Item]]:
    """Consecutive items packed up to ``room`` tokens (every item is at most room / 2)."""
    groups: list[list[_Item]] = [[]]
    size = 0
    for i in items:
        if groups[-1] and size + i.tokens > room:
            groups.append([])
            size = 0
        groups[-1].append(i)
        size += i.tokens
    return groups


def _fresh_ask(
    engine: Engine, options: SummarizeOptions, budget: int, items: list[_Item], question: str, cap: int,
    ask: AskFn,
) -> Answer:  # fmt: skip
    """Ask ``question`` in a fresh session after the notes ``items`` (one user turn; the engine
    cuts long text into prefill-sized units)."""
    config = SessionConfig(system_prompt=options.prompts.system, max_context_tokens=budget)
    session = engine.open_session(config)
    try:
        session.push_text("Notes on the meeting:\n" + "\n".join(i.text for i in items), role="user")
        return ask(session, question, cap)
    finally:
        session.close()
