"""A whole conversation → the model's input layout (+ labels), statelessly.

The same :class:`~streamer.engine.timeline.Timeline` and
:class:`~streamer.engine.sequence.SequenceBuilder` that a live session uses lay out the
media, the question and the answer, so a fine-tuned model is trained on exactly the sequence
the engine serves (timestamps, ``<boi>``/``<boa>`` blocks, chat turns).
"""

from __future__ import annotations

from collections.abc import Iterable

from streamer.engine.protocol import SamplingParams, check_text
from streamer.engine.sequence import PendingUnit, SequenceBuilder
from streamer.engine.timeline import Item, QuestionItem, Timeline
from streamer.media.types import AudioFrames, VideoFrame
from streamer.model.config import ModelConfig
from streamer.model.inputs import MM_TEXT, Layout
from streamer.model.tokenizer import Tokenizer

__all__ = ["build_example", "IGNORE_INDEX"]

IGNORE_INDEX = -100  # label of tokens without loss (as torch's cross_entropy ignores)


def build_example(
    config: ModelConfig,
    tokenizer: Tokenizer,
    *,
    media: Iterable[VideoFrame | AudioFrames] = (),
    prompt: str,
    answer: str | None = None,
    system_prompt: str | None = None,
    frame_soft_tokens: int = 70,
    audio_segment_s: float = 1.0,
) -> tuple[Layout, list[int]]:
    """The layout of a fresh session fed ``media`` (in time order) then asked ``prompt``.

    With ``answer``, its tokens and the model turn's closing token follow, and ``labels`` (one
    per layout token) hold their ids; every other label is :data:`IGNORE_INDEX`.
    """
    check_text(prompt, "prompt", empty_ok=False)
    timeline = Timeline(audio_segment_s)
    builder = SequenceBuilder(
        config, tokenizer, frame_soft_tokens=frame_soft_tokens, audio_segment_s=audio_segment_s
    )
    items: list[Item] = []
    for m in media:
        if isinstance(m, VideoFrame):
            items += timeline.push_frame(m.image, m.t_s)
        else:
            items += timeline.push_audio(m.waveform(), m.t_s)
    items += timeline.flush()
    items.append(QuestionItem(prompt, SamplingParams()))
    units: list[PendingUnit] = builder.start(system_prompt)
    for item in items:
        units += builder.units_of(item)
    lay = builder.lay_out(units, 0)
    labels = [IGNORE_INDEX] * len(lay)
    if answer is not None:
        check_text(answer, "answer")
        ids = tokenizer.encode(answer)
        chat = tokenizer.chat_format
        suffix = tokenizer.encode(chat.model_suffix) if chat is not None else []
        lay.ids += ids + suffix
        lay.kinds += [MM_TEXT] * (len(ids) + len(suffix))
        lay.block_ids += [-1] * (len(ids) + len(suffix))
        # The answer and the token that ends it (the engine stops on it); not the newline after.
        labels += ids + suffix[:1] + [IGNORE_INDEX] * max(len(suffix) - 1, 0)
    return lay, labels
