"""A fake engine for front-end tests: the real loop, sessions, queues and streams, scripted answers.

:class:`FakeEngine` is :class:`~streamer.engine.runtime.EngineLoop` around a :class:`ScriptedCore`
(no torch, no model), so endpoint tests exercise the same commands, backpressure, events,
cancellation and health as production, in milliseconds::

    engine = FakeEngine(answer=lambda question: "yes")   # or a fixed string; default echoes
    engine.start()
    session = engine.open_session()
    session.push_frame(rgb, 0.0)
    print(session.ask("Anything?").result(1).text)       # "yes"

Each answer streams one word per step (``step_delay_s`` of simulated model time per step);
``choices`` answers the first choice unless the script returns one of them; a question
containing ``fail_on`` ends with a model error (for fault tests).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from streamer.engine.collector import AnswerStream
from streamer.engine.protocol import ErrorCode, FinishReason, SessionConfig
from streamer.engine.runtime import EngineConfig, EngineLoop, EngineMetrics, SessionRecord
from streamer.engine.timeline import AudioItem, FrameItem, Item, QuestionItem, seconds_of

__all__ = ["FakeEngine", "ScriptedCore"]


@dataclass
class _FakeAnswer:
    stream: AnswerStream
    words: list[str]
    finish: FinishReason
    max_tokens: int
    sent: int = 0


@dataclass
class _FakeSlot:
    record: SessionRecord
    answering: _FakeAnswer | None = None
    tokens: int = 0
    history: list[str] = field(default_factory=list)  # what the "model" saw, for assertions


class ScriptedCore:
    """Implements :class:`~streamer.engine.runtime.Core` with scripted answers."""

    def __init__(
        self,
        metrics: EngineMetrics,
        answer: str | Callable[[str], str] | None = None,
        step_delay_s: float = 0.0,
        fail_on: str | None = None,
        context_tokens: int = 32_768,
    ):
        self.metrics = metrics
        self.answer = answer
        self.step_delay_s = step_delay_s
        self.fail_on = fail_on
        self.context_tokens = context_tokens
        self.slots: dict[str, _FakeSlot] = {}

    def resolve(self, config: SessionConfig) -> SessionConfig:
        return dataclasses.replace(
            config, max_context_tokens=config.max_context_tokens or self.context_tokens
        )

    def estimate(self, config: SessionConfig) -> Callable[[Item], int]:
        def tokens(item: Item) -> int:
            if isinstance(item, FrameItem):
                return config.frame_soft_tokens + 12
            if isinstance(item, AudioItem):
                return int(item.frames.shape[0]) + 2
            return item.nbytes // 2 + 16

        return tokens

    def open(self, record: SessionRecord) -> None:
        self.slots[record.id] = _FakeSlot(record)

    def close(self, record: SessionRecord) -> None:
        slot = self.slots.pop(record.id, None)
        if slot is not None and slot.answering is not None:
            slot.answering.stream.finish(FinishReason.CLOSED)

    def fail(self, records: list[SessionRecord], message: str) -> None:
        for record in records:
            slot = self.slots.get(record.id)
            if slot is not None and slot.answering is not None:
                slot.answering.stream.finish(FinishReason.ERROR, message, ErrorCode.INTERNAL)
                slot.answering = None
                record.answering = False

    def _script(self, question: str) -> str:
        if self.answer is None:
            return f"You asked: {question}"
        return self.answer if isinstance(self.answer, str) else self.answer(question)

    def step(self, records: list[SessionRecord]) -> bool:
        did = False
        for record in records:
            slot = self.slots.get(record.id)
            if slot is None:
                continue
            if slot.answering is None:
                estimate = self.estimate(record.config)
                for item in record.inbox.take(4096, at_least_one=True):
                    did = True
                    self._ingest(slot, item, estimate(item))
                    record.inbox.done()
            if slot.answering is not None:
                did = True
                self._advance(slot)
        if did and self.step_delay_s:
            time.sleep(self.step_delay_s)
        return did

    def _ingest(self, slot: _FakeSlot, item: Item, tokens: int) -> None:
        record = slot.record
        slot.tokens += tokens
        record.context_tokens = min(slot.tokens, record.config.max_context_tokens or slot.tokens)
        self.metrics.prefill_tokens += tokens
        if isinstance(item, FrameItem):
            record.frames += 1
            slot.history.append(f"frame@{item.t_s:g}")
        elif isinstance(item, AudioItem):
            record.audio_s += seconds_of(item)
            slot.history.append(f"audio@{item.t_s:g}")
        elif isinstance(item, QuestionItem):
            slot.history.append(f"question:{item.text}")
            self._begin(slot, item)
        else:
            slot.history.append(f"{item.role}:{item.text}")

    def _begin(self, slot: _FakeSlot, item: QuestionItem) -> None:
        stream = item.stream
        if stream is None or stream.finished:
            return
        if self.fail_on is not None and self.fail_on in item.text:
            stream.finish(FinishReason.ERROR, "model error: injected fault", ErrorCode.MODEL_ERROR)
            return
        stream.context_tokens = slot.record.context_tokens
        text = self._script(item.text)
        finish = FinishReason.STOP
        if item.params.choices:
            text = text if text in item.params.choices else item.params.choices[0]
            finish = FinishReason.CHOICE
        words = [w + " " for w in text.split(" ")]
        words[-1] = words[-1][:-1]
        slot.answering = _FakeAnswer(stream, words, finish, item.params.max_new_tokens)
        slot.record.answering = True

    def _advance(self, slot: _FakeSlot) -> None:
        ans = slot.answering
        assert ans is not None
        if ans.stream.cancelled or ans.stream.finished:
            slot.answering, slot.record.answering = None, False
            return
        if ans.sent >= len(ans.words) or ans.sent >= ans.max_tokens:
            reason = ans.finish if ans.sent >= len(ans.words) else FinishReason.LENGTH
            ans.stream.finish(reason)
            self.metrics.answers += 1
            slot.answering, slot.record.answering = None, False
            return
        ans.stream.put(ans.words[ans.sent], [ans.sent])
        ans.sent += 1
        self.metrics.generated_tokens += 1


class FakeEngine(EngineLoop):
    """The engine loop with a :class:`ScriptedCore`: same API as :class:`~streamer.engine.Engine`."""

    def __init__(
        self,
        answer: str | Callable[[str], str] | None = None,
        *,
        step_delay_s: float = 0.0,
        fail_on: str | None = None,
        config: EngineConfig | None = None,
    ):
        metrics = EngineMetrics()
        core = ScriptedCore(metrics, answer, step_delay_s, fail_on)
        super().__init__(core, config, metrics)
        self.scripted = core

    def history(self, session_id: str) -> list[str]:
        """What the fake model was fed for a session, in order."""
        slot = self.scripted.slots.get(session_id)
        return list(slot.history) if slot is not None else []
