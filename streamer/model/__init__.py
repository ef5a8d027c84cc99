"""The network: config, layers, weights, tokenizer + chat template (pure math, no I/O beyond loading).

``streamer.model`` never imports ``streamer.engine``: sampling, decode loops and batching live there.
"""

from __future__ import annotations

from streamer.model.config import ModelConfig, load_config
from streamer.model.gemma4_unified import Gemma4Unified
from streamer.model.tokenizer import Tokenizer, load_tokenizer
from streamer.model.weights import LoadedModel, load_model

__all__ = [
    "Gemma4Unified",
    "LoadedModel",
    "ModelConfig",
    "Tokenizer",
    "load_config",
    "load_model",
    "load_tokenizer",
]
