"""The demo model's shape, vocabulary and chat template, and its untrained starting checkpoint.

A small gemma4_unified checkpoint (4 layers, hidden 128, 1.6 M parameters, fp32 ≈ 6.5 MB) with
its own 512-token byte-level BPE vocabulary (digits split, so ``01:30`` is five tokens the model
can copy from a frame's timestamp) trained on the demo task's texts, and the Gemma-style chat
template. :func:`write_initial_model` writes its starting point: random weights with attention
and residual scales set for training from scratch, and the two encoder-free projections starting
as a low-pass patch average and a windowed Fourier filter bank (every weight trains from there);
``streamer finetune --full`` trains it (:mod:`streamer.demo.train`), and the result ships as the
bundled default (:data:`DEMO_DIR`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from streamer import jsonio
from streamer.demo.scene import COLOURS, MOTIONS, SHAPES, TONES
from streamer.demo.tasks import (
    CLIP_QUESTIONS,
    COUNT_WORDS,
    NOTES_NONE,
    SUMMARY_OVERVIEW,
    SYSTEM_PROMPT,
    TIMELINE_QUESTION,
    notes_prompt,
    summary_prompt,
)
from streamer.model.bundled import ENGLISH_CORPUS, small_config, write_random_weights, write_tokenizer

__all__ = ["DEMO_NAME", "DEMO_DIR", "demo_config", "write_initial_model", "demo_model_dir"]

DEMO_NAME = "streamer-shapes-beeps-v1"
DEMO_DIR = Path(__file__).resolve().parent.parent / "assets" / DEMO_NAME  # the shipped, trained model
_VOCAB = 512
_EXTRA_WORDS = "purple orange pink white black grey star heart diamond hexagon beep beeps tone"


def demo_config() -> dict[str, Any]:
    """``config.json`` of the demo model: the bundled checkpoint's layout, twice as wide, with a
    512-token window and two global layers."""
    full = {"head_dim": 32, "num_key_value_heads": 2}
    text = {
        "hidden_size": 128, "intermediate_size": 512, "head_dim": 32, "sliding_window": 512,
        "layer_types": ["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
        "attention_k_eq_v": False, "per_layer_config": {"1": dict(full), "3": dict(full)},
    }  # fmt: skip
    return small_config(text=text, vision={"mm_embed_dim": 64, "output_proj_dims": 64})


def _corpus() -> str:
    """Every text of the task, weighted so its words become single tokens, plus general English."""
    words = [*COLOURS, *SHAPES, *MOTIONS, *TONES, *COUNT_WORDS, NOTES_NONE, SUMMARY_OVERVIEW]
    texts = [*CLIP_QUESTIONS.values(), SYSTEM_PROMPT, notes_prompt(0, 15), summary_prompt("01:00")]
    texts += [TIMELINE_QUESTION.format(time="00:00"), "none", _EXTRA_WORDS]
    texts += [f"- 00:00 {c} {s}, {n} {t} beep{'s' if n > 1 else ''}"
              for c in COLOURS for s in SHAPES for t in TONES for n in range(1, 5)]  # fmt: skip
    # Answers start a model turn with no space before them: they appear at line starts too.
    return "\n".join([" ".join(words), "\n".join(words)] * 8 + texts * 2 + [ENGLISH_CORPUS])


# A trainable starting point. Gemma 4 attends with scale 1 after q/k RMSNorms, so unit q/k norm
# scales make the initial attention logits ~N(0, head_dim): near one-hot, random, and slow to
# learn; head_dim^-1/4 on each gives ~N(0, 1) (the usual 1/sqrt(d)). The post-norms put each
# residual branch at unit RMS whatever its weights; 0.1 keeps the token embeddings audible
# through the stack at the start (the role of GPT-2's scaled residual init).
NORM_INIT = {
    "q_norm.weight": 32**-0.25,
    "k_norm.weight": 32**-0.25,
    "post_attention_layernorm.weight": 0.1,
    "post_feedforward_layernorm.weight": 0.1,
}


def _patch_filters(side: int, blocks: int) -> torch.Tensor:
    """``patch_dense`` rows that average each of ``blocks x blocks`` sub-squares of a patch per colour
    channel: a low-pass view from which a nonlinear reader tells edges, corners and curves (a linear
    read of raw patches cannot: measured, 40 % on circle/square/triangle vs 67 % from these).
    ``[blocks * blocks * 3, side * side * 3]``; patches are flattened (y, x, channel)."""
    cell = side // blocks
    weight = torch.zeros(blocks * blocks * 3, side, side, 3)
    row = 0
    for by in range(blocks):
        for bx in range(blocks):
            for c in range(3):
                weight[row, by * cell : (by + 1) * cell, bx * cell : (bx + 1) * cell, c] = 1.0 / cell**2
                row += 1
    return weight.reshape(row, -1)


def _audio_filters(
    samples: int, dim: int, rate: int = 16_000, low: float = 200.0, high: float = 3000.0
) -> torch.Tensor:
    """``embed_audio`` projection start: Hann-windowed cosine/sine pairs at ``dim / 2`` log-spaced
    frequencies in ``[low, high]`` Hz, so a tone lights up the pair at its pitch. ``[dim, samples]``."""
    t = torch.arange(samples, dtype=torch.float64) / rate
    window = torch.hann_window(samples, periodic=False, dtype=torch.float64)
    freqs = torch.logspace(math.log10(low), math.log10(high), dim // 2, dtype=torch.float64)
    angle = 2 * math.pi * freqs[:, None] * t[None]
    rows = torch.cat([torch.cos(angle) * window, torch.sin(angle) * window])  # [dim, samples]
    return (rows / rows.norm(dim=1, keepdim=True) * 0.5).float()  # the norm of a N(0, 0.02) row


def _position_codes(size: int, dim: int, offset: int, width: int, periods: tuple[float, ...]) -> torch.Tensor:
    """``pos_embedding`` start ``[size, 2, dim]``: each axis gets ``width`` dimensions of its own
    (x from ``offset``, y after it) holding sin/cos pairs of the grid index at ``periods`` (in
    patches), at the scale of a normalised patch feature. The random start (norm ~0.15 against
    ~8 for the patch) left a patch's place nearly invisible: after a whole training stage the
    table had no usable order (measured), and "which way is it moving" stayed at chance."""
    codes = torch.zeros(size, 2, dim)
    index = torch.arange(size, dtype=torch.float64)
    for axis in range(2):
        start = offset + axis * width
        for k, period in enumerate(periods[: width // 2]):
            angle = 2 * math.pi * index / period
            codes[:, axis, start + 2 * k] = torch.sin(angle).float()
            codes[:, axis, start + 2 * k + 1] = torch.cos(angle).float()
    return codes


def write_initial_model(out: Path, seed: int = 0) -> Path:
    """The demo model's starting point (random weights, the starts above) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    config = demo_config()
    (out / "config.json").write_text(jsonio.dumps(config, indent=2))
    write_tokenizer(out, corpus=_corpus(), vocab_size=_VOCAB, split_digits=True)
    write_random_weights(out, config, seed=seed, norm_init=NORM_INIT)
    path = out / "model.safetensors"
    state = load_file(str(path))
    dense = state["model.vision_embedder.patch_dense.weight"]  # [mm_embed_dim, patch_dim]
    blocks = _patch_filters(48, 4)  # 48 of the 64 rows; the rest stay random
    dense[: len(blocks)] = blocks
    # the remaining rows carry place only: zero patch weights there, (x, y) codes in pos_embedding
    dense[len(blocks) :] = 0.0
    state["model.vision_embedder.patch_dense.bias"][len(blocks) :] = 0.0
    pos = state["model.vision_embedder.pos_embedding"]  # [mm_posemb_size, 2, mm_embed_dim]
    width = (pos.shape[2] - len(blocks)) // 2
    pos[:] = _position_codes(
        pos.shape[0], pos.shape[2], len(blocks), width, (64.0, 32.0, 16.0, 8.0, 4.0, 2.5)
    )
    audio = state["model.embed_audio.embedding_projection.weight"]  # [hidden, 640]
    audio[:] = _audio_filters(audio.shape[1], audio.shape[0])
    save_file(state, str(path), metadata={"format": "pt"})
    return out


def demo_model_dir() -> Path | None:
    """The shipped demo model, or None when this install has none (a checkout before training)."""
    return DEMO_DIR if (DEMO_DIR / "model.safetensors").is_file() else None
