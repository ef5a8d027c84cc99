"""Write a trained model as a checkpoint directory in the source checkpoint's own (HF) layout.

``config.json`` and every other non-weight file of the source directory (tokenizer, chat template,
generation config, ...) are copied; the weights go into one ``model.safetensors`` with the
source's tensor names, in the source's dtype. The result loads with ``--model`` and with
transformers, and ``streamer verify`` checks it like any checkpoint.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from streamer.model.config import ModelConfig
from streamer.model.weights import DTYPES

__all__ = ["write_checkpoint"]

_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


def write_checkpoint(model: nn.Module, config: ModelConfig, source: Path, out: Path) -> Path:
    """Write ``model``'s weights and ``source``'s other files into ``out`` (each file atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    for item in sorted(source.iterdir()):
        if not item.is_file() or item.name in _WEIGHT_FILES or item.name.startswith("model-"):
            continue
        if item.suffix == ".safetensors":
            continue
        tmp = out / f".{item.name}.tmp"
        shutil.copyfile(item, tmp)
        os.replace(tmp, out / item.name)
    dtype = DTYPES.get(config.torch_dtype or "", torch.float32)
    state = {
        name: tensor.detach().to("cpu", dtype if tensor.is_floating_point() else tensor.dtype).contiguous()
        for name, tensor in model.state_dict().items()
    }
    tmp = out / ".model.safetensors.tmp"
    save_file(state, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, out / "model.safetensors")
    return out
