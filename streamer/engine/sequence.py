"""Session inputs → the unified sequence, one :class:`PendingUnit` at a time (no model calls).

Layout, following the reference processor and the checkpoint's chat template:

    <bos><system turn>                                       pinned (attention sink + system prompt)
    <user turn open> 00:00 <boi>frame<eoi><boa>audio 0-1 s<eoa> 00:01 <boi>frame<eoi> …
        question <user turn close><generation prompt> answer <model turn close>
    <user turn open> …media keeps streaming…

Frames carry their ``mm:ss`` timestamp text (as the reference video processor writes it);
audio is cut into segments of ``audio_segment_s`` (≤ 30 s, the reference's cap per segment).
Each unit is one eviction unit: a frame with its timestamp, an audio segment, or a text span.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from streamer.engine.eviction import Unit, UnitKind
from streamer.engine.timeline import AudioItem, FrameItem, Item, TextItem
from streamer.errors import InputError
from streamer.media.types import SAMPLE_RATE
from streamer.model.config import ModelConfig
from streamer.model.inputs import Audio, Image, Layout, Segment, Text, layout
from streamer.model.preprocess import VIDEO_SOFT_TOKENS, image_to_patches, mmss
from streamer.model.tokenizer import ChatFormat, Tokenizer

__all__ = ["PendingUnit", "SequenceBuilder", "MAX_AUDIO_SEGMENT_S"]

MAX_AUDIO_SEGMENT_S = 30.0  # the reference caps one audio segment at 30 s (750 tokens)


@dataclass
class PendingUnit:
    """A unit built but not yet prefilled."""

    unit: Unit
    segments: list[Segment]  # what to lay out and embed
    question: bool = False  # the last unit before an answer: its logits start generation


class SequenceBuilder:
    """Turns pushes into units; tracks whether a user turn is open."""

    def __init__(
        self,
        config: ModelConfig,
        tokenizer: Tokenizer,
        *,
        frame_soft_tokens: int = VIDEO_SOFT_TOKENS,
        audio_segment_s: float = 1.0,
        max_text_unit_tokens: int = 512,
    ):
        if not 0 < audio_segment_s <= MAX_AUDIO_SEGMENT_S:
            raise InputError(f"audio_segment_s must be in (0, {MAX_AUDIO_SEGMENT_S}]")
        self.config = config
        self.tokenizer = tokenizer
        self.chat: ChatFormat | None = tokenizer.chat_format
        self.frame_soft_tokens = frame_soft_tokens
        self.samples_per_segment = int(round(audio_segment_s * SAMPLE_RATE))
        self.max_text_unit_tokens = max_text_unit_tokens
        self.in_user_turn = False
        self._after_answer = False  # the model's turn must be closed before anything else

    def state(self) -> tuple[bool, bool]:
        """Where the chat stands (a user turn open, an answer to close): for rollback and snapshots."""
        return self.in_user_turn, self._after_answer

    def set_state(self, state: tuple[bool, bool]) -> None:
        self.in_user_turn, self._after_answer = bool(state[0]), bool(state[1])

    def _text(self, text: str, pinned: bool = False, label: str = "") -> list[PendingUnit]:
        """Text as units of at most ``max_text_unit_tokens`` (text is causal, so it can be cut
        anywhere; bounded units keep every prefill chunk, and its attention mask, small)."""
        ids = self.tokenizer.encode(text) if text else []
        step = self.max_text_unit_tokens
        return [
            PendingUnit(Unit(UnitKind.TEXT, len(piece), pinned=pinned, label=label), [Text(piece)])
            for piece in (ids[i : i + step] for i in range(0, len(ids), step))
        ]

    def start(self, system_prompt: str | None) -> list[PendingUnit]:
        """The pinned head of the sequence: BOS and the system turn."""
        chat = self.chat
        head = chat.bos if chat else (self.tokenizer.special.get("bos_token") or "")
        if system_prompt:
            head += f"{chat.system_prefix}{system_prompt}{chat.system_suffix}" if chat else system_prompt
        if not head:
            head = " "
        return self._text(head, pinned=True, label="system")

    def _open_turn(self) -> list[PendingUnit]:
        out = self._close_answer()
        if not self.in_user_turn and self.chat is not None:
            out += self._text(self.chat.user_prefix, label="turn")
        self.in_user_turn = True
        return out

    def _close_answer(self) -> list[PendingUnit]:
        if not self._after_answer:
            return []
        self._after_answer = False
        return self._text(self.chat.model_suffix, label="turn end") if self.chat else []

    def frame(self, image: np.ndarray, t_s: float) -> list[PendingUnit]:
        """A video frame shown at ``t_s`` seconds."""
        if self.config.vision is None:
            raise InputError("this model takes no images (its checkpoint has no vision_config)")
        patches = image_to_patches(image, self.config.vision, self.frame_soft_tokens, video=True)
        stamp = self.tokenizer.encode(f"{mmss(t_s)} ")
        segments: list[Segment] = [Text(stamp), Image(patches, video=True)]
        unit = Unit(UnitKind.VISION, len(stamp) + patches.num_tokens + 2, label=f"frame {mmss(t_s)}")
        return [*self._open_turn(), PendingUnit(unit, segments)]

    def image(self, image: np.ndarray, max_soft_tokens: int) -> list[PendingUnit]:
        """A still image (not part of the video timeline)."""
        if self.config.vision is None:
            raise InputError("this model takes no images (its checkpoint has no vision_config)")
        patches = image_to_patches(image, self.config.vision, max_soft_tokens)
        unit = Unit(UnitKind.VISION, patches.num_tokens + 2, label="image")
        return [*self._open_turn(), PendingUnit(unit, [Image(patches)])]

    def audio(self, frames: np.ndarray, t_s: float) -> list[PendingUnit]:
        """One audio segment: 16 kHz frames ``[N, samples_per_token]`` starting at ``t_s``."""
        if self.config.audio is None:
            raise InputError("this model takes no audio (its checkpoint has no audio_config)")
        n = self.config.audio.samples_per_token
        if frames.ndim != 2 or frames.shape[1] != n or frames.shape[0] == 0:
            raise InputError(f"audio frames must be float32 [N>0, {n}], got {list(frames.shape)}")
        unit = Unit(UnitKind.AUDIO, frames.shape[0] + 2, label=f"audio {mmss(t_s)}")
        tensor = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
        return [*self._open_turn(), PendingUnit(unit, [Audio(tensor)])]

    def turn(self, role: str, text: str) -> list[PendingUnit]:
        """A complete chat turn (``role`` is system, user or assistant)."""
        if role not in ("system", "user", "assistant"):
            raise InputError(f"unknown role {role!r} (system, user or assistant)")
        out = self._close_answer()
        if self.in_user_turn and self.chat is not None:
            out += self._text(self.chat.user_suffix, label="turn end")
        self.in_user_turn = False
        chat = self.chat
        if chat is None:
            return [*out, *self._text(text, label=role)]
        prefix, suffix = {
            "system": (chat.system_prefix, chat.system_suffix),
            "user": (chat.user_prefix, chat.user_suffix),
            "assistant": (chat.generation_prompt, chat.model_suffix),
        }[role]
        return [*out, *self._text(f"{prefix}{text}{suffix}", label=role)]

    def question(self, text: str) -> list[PendingUnit]:
        """The user's question, closing the turn and opening the model's answer."""
        out = self._open_turn()
        tail = f"{self.chat.user_suffix}{self.chat.generation_prompt}" if self.chat else "\n"
        units = self._text(f"{text}{tail}", label="question")
        units[-1].question = True
        self.in_user_turn = False
        self._after_answer = True
        return [*out, *units]

    def units_of(self, item: Item) -> list[PendingUnit]:
        """The units of one queued item (the step thread calls this: it tokenizes and patchifies)."""
        if isinstance(item, FrameItem):
            return self.frame(item.image, item.t_s)
        if isinstance(item, AudioItem):
            return self.audio(item.frames, item.t_s)
        if isinstance(item, TextItem):
            return self.turn(item.role, item.text)
        return self.question(item.text)

    def lay_out(self, units: list[PendingUnit], first_block: int) -> Layout:
        """One layout for consecutive pending units."""
        segments = [seg for u in units for seg in u.segments]
        return layout(self.config, segments, first_block=first_block)
