"""LoRA with peft on the attention and MLP projections and on the two encoder-free embedders.

peft injects its adapters into our plain ``nn.Module`` by module name (no transformers model
class needed). Targets: ``q/k/v/o_proj`` and ``gate/up/down_proj`` of every decoder layer, the
vision embedder's ``patch_dense`` and the ``embedding_projection`` of ``embed_vision`` and
``embed_audio``. After training the adapters are merged into the weights (the output is a
plain checkpoint) and also saved in peft's own format (``adapter_config.json`` +
``adapter_model.safetensors``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

__all__ = ["LORA_TARGETS", "add_lora", "merge_lora", "save_adapter"]

# Full module names peft matches (a regex on the whole name).
LORA_TARGETS = (
    r".*\.(self_attn\.(q_proj|k_proj|v_proj|o_proj)|mlp\.(gate_proj|up_proj|down_proj)"
    r"|vision_embedder\.patch_dense|embed_vision\.embedding_projection|embed_audio\.embedding_projection)$"
)


def add_lora(model: nn.Module, rank: int, alpha: int | None = None, dropout: float = 0.0) -> nn.Module:
    """Wrap ``model`` in a peft model whose only trainable weights are the LoRA adapters."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=rank, lora_alpha=alpha if alpha is not None else 2 * rank, lora_dropout=dropout,
        target_modules=LORA_TARGETS, bias="none",
    )  # fmt: skip
    return get_peft_model(model, config)


def merge_lora(peft_model: nn.Module) -> nn.Module:
    """The base model with the adapters merged into its weights (the adapters removed)."""
    merged = peft_model.merge_and_unload()  # type: ignore[operator]
    merged.requires_grad_(False)
    return merged


def save_adapter(peft_model: nn.Module, out: Path) -> None:
    """The adapters in peft's format, loadable with ``PeftModel.from_pretrained``."""
    with torch.no_grad():
        peft_model.save_pretrained(str(out))  # type: ignore[operator]
