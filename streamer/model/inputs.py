"""A unified sequence as the model sees it: text ids, image/frame blocks and audio blocks.

:func:`layout` expands segments into token ids with the reference's placeholders
(``<boi> image×N <eoi>``, ``<boa> audio×N <eoa>``) and :func:`embed` turns them into input
embeddings plus :class:`TokenMeta`, scattering the encoder-free soft tokens into their slots.
The engine builds its live sequence from the same segments, chunk by chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from streamer.model.attention import TokenMeta
from streamer.model.config import ModelConfig
from streamer.model.gemma4_unified import Gemma4Unified
from streamer.model.preprocess import Patches

__all__ = [
    "Text",
    "Image",
    "Audio",
    "Segment",
    "Layout",
    "layout",
    "embed_layout",
    "MM_TEXT",
    "MM_IMAGE",
    "MM_VIDEO",
    "MM_AUDIO",
]

# Token kinds, numbered as the reference's mm_token_type_ids.
MM_TEXT, MM_IMAGE, MM_VIDEO, MM_AUDIO = 0, 1, 2, 3


@dataclass
class Text:
    ids: list[int]  # token ids, already tokenized


@dataclass
class Image:
    patches: Patches  # one image or video frame
    video: bool = False  # a video frame (video_token_id) rather than an image (image_token_id)


@dataclass
class Audio:
    frames: torch.Tensor  # float32 [N, samples_per_token], 16 kHz waveform frames


Segment = Text | Image | Audio


@dataclass
class Layout:
    """Token ids plus, per token, its kind and bidirectional block (-1 = causal)."""

    ids: list[int] = field(default_factory=list)
    kinds: list[int] = field(default_factory=list)  # MM_* per token
    block_ids: list[int] = field(default_factory=list)  # -1, or the image/frame block index
    media: list[tuple[int, Segment]] = field(default_factory=list)  # (first soft-token index, segment)

    def __len__(self) -> int:
        return len(self.ids)


def _require(value: int | None, name: str) -> int:
    if value is None:
        raise ValueError(f"the checkpoint's config has no {name}")
    return value


def layout(config: ModelConfig, segments: list[Segment], first_block: int = 0) -> Layout:
    """Expand ``segments`` into ids with placeholders, as the reference processor does."""
    out = Layout()
    block = first_block
    for seg in segments:
        if isinstance(seg, Text):
            out.ids += seg.ids
            out.kinds += [MM_TEXT] * len(seg.ids)
            out.block_ids += [-1] * len(seg.ids)
            continue
        if isinstance(seg, Image):
            n = seg.patches.num_tokens
            token = _require(
                config.video_token_id if seg.video else config.image_token_id, "image/video token id"
            )
            begin, end = (
                _require(config.boi_token_id, "boi_token_id"),
                _require(config.eoi_token_id, "eoi_token_id"),
            )
            kind, blocks = (MM_VIDEO if seg.video else MM_IMAGE), [block] * n
            block += 1
        else:
            n = int(seg.frames.shape[0])
            token = _require(config.audio_token_id, "audio_token_id")
            begin, end = (
                _require(config.boa_token_id, "boa_token_id"),
                _require(config.eoa_token_id, "eoa_token_index"),
            )
            kind, blocks = MM_AUDIO, [-1] * n
        out.ids.append(begin)
        out.kinds.append(MM_TEXT)
        out.block_ids.append(-1)
        out.media.append((len(out.ids), seg))
        out.ids += [token] * n
        out.kinds += [kind] * n
        out.block_ids += blocks
        out.ids.append(end)
        out.kinds.append(MM_TEXT)
        out.block_ids.append(-1)
    return out


def embed_layout(model: Gemma4Unified, lay: Layout, device: torch.device | str | None = None) -> torch.Tensor:
    """Input embeddings ``[S, hidden]`` of a layout: word embeddings with soft tokens scattered in."""
    weight = model.model.language_model.embed_tokens.weight
    device = device or weight.device
    ids = torch.tensor(lay.ids, dtype=torch.long, device=device)
    kinds = torch.tensor(lay.kinds, dtype=torch.long, device=device)
    pad = model.config.text.pad_token_id or 0
    embeds = model.embed_tokens(torch.where(kinds == MM_TEXT, ids, pad))
    for start, seg in lay.media:
        if isinstance(seg, Image):
            soft = model.embed_image(seg.patches.pixels.to(device), seg.patches.positions.to(device))
        else:
            assert isinstance(seg, Audio)
            soft = model.embed_audio(seg.frames.to(device))
        embeds[start : start + soft.shape[0]] = soft.to(embeds.dtype)
    return embeds


def meta_for(lay: Layout, start: int = 0, device: torch.device | str = "cpu") -> TokenMeta:
    """Metadata of a layout placed at sequence index / position ``start`` (batch of one)."""
    idx = torch.arange(start, start + len(lay), device=device)[None]
    blocks = torch.tensor(lay.block_ids, dtype=torch.long, device=device)[None]
    return TokenMeta(positions=idx, seq_index=idx, block_ids=blocks)
