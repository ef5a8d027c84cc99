"""Tiny random checkpoints written by transformers' ``save_pretrained`` (the real tensor names and config fields).

transformers is a test dependency only: it writes the checkpoints and serves as the oracle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

TOKENS = dict(
    boi_token_id=500,
    eoi_token_id=501,
    image_token_id=502,
    video_token_id=503,
    boa_token_id=504,
    eoa_token_index=505,
    audio_token_id=506,
)

BASE_TEXT: dict[str, Any] = dict(
    vocab_size=512,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    global_head_dim=32,
    sliding_window=16,
    max_position_embeddings=4096,
)

# name → (text overrides, top-level overrides, dtype)
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any], torch.dtype]] = {
    "default": ({"num_global_key_value_heads": 1, "attention_k_eq_v": True}, {}, torch.float32),
    "kv-shared-softcap": (
        {
            "num_hidden_layers": 6,
            "num_kv_shared_layers": 2,
            "use_double_wide_mlp": True,
            "final_logit_softcapping": 30.0,
            "layer_types": [
                "sliding_attention",
                "full_attention",
                "sliding_attention",
                "full_attention",
                "sliding_attention",
                "full_attention",
            ],
        },
        {},
        torch.float32,
    ),
    "odd-pattern-rope": (
        {
            "num_hidden_layers": 5,
            "layer_types": [
                "full_attention",
                "sliding_attention",
                "sliding_attention",
                "full_attention",
                "sliding_attention",
            ],
            "sliding_window": 7,
            "num_attention_heads": 6,
            "num_key_value_heads": 3,
            "head_dim": 8,
            "global_head_dim": 24,
            "rope_parameters": {
                "sliding_attention": {"rope_type": "default", "rope_theta": 500.0},
                "full_attention": {
                    "rope_type": "proportional",
                    "partial_rotary_factor": 0.5,
                    "rope_theta": 20000.0,
                    "factor": 2.0,
                },
            },
            "tie_word_embeddings": False,
        },
        {
            "boi_token_id": 300,
            "eoi_token_id": 301,
            "image_token_id": 302,
            "video_token_id": 303,
            "boa_token_id": 304,
            "eoa_token_index": 305,
            "audio_token_id": 306,
            "tie_word_embeddings": False,
        },
        torch.float32,
    ),
    "bidir-all": (
        {"use_bidirectional_attention": "all", "num_global_key_value_heads": 1, "attention_k_eq_v": True},
        {},
        torch.float32,
    ),
    "bf16": ({"num_global_key_value_heads": 1, "attention_k_eq_v": True}, {}, torch.bfloat16),
}


def write_checkpoint(
    path: Path, variant: str = "default", *, shard_size: str | None = None, seed: int = 0
) -> Path:
    """Write a tiny random checkpoint of ``variant`` into ``path`` and return it."""
    from transformers import Gemma4UnifiedConfig, Gemma4UnifiedForConditionalGeneration

    text, top, dtype = VARIANTS[variant]
    config = Gemma4UnifiedConfig(
        text_config={**BASE_TEXT, **text},
        vision_config=dict(mm_embed_dim=48, output_proj_dims=48, mm_posemb_size=64),
        audio_config=dict(),
        **{**TOKENS, **top},
    )
    torch.manual_seed(seed)
    model = Gemma4UnifiedForConditionalGeneration(config).to(dtype)
    # Random norms/scalars so that a missed scale would show in the logits.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                p.uniform_(0.5, 1.5)
        for name, b in model.named_buffers():
            if name.endswith("layer_scalar"):
                b.uniform_(0.5, 1.5)
    kwargs = {"max_shard_size": shard_size} if shard_size else {}
    model.save_pretrained(path, **kwargs)
    return path
