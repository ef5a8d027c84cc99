"""The tiny bundled default checkpoint: every command runs out of the box.

Its weights are deterministic random numbers, so its answers are meaningless; it exists so
that `streamer ask/summarize/serve` work on a fresh machine and in tests. It is written once
(atomically) into ``$STREAMER_HOME/models/`` (default ``~/.cache/streamer``) by this module
with the same file layout as a real checkpoint: config.json, model.safetensors,
tokenizer.json, tokenizer_config.json, chat_template.jinja, generation_config.json.
Point ``--model`` at a real Gemma 4 12B directory for real answers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from streamer import jsonio

__all__ = [
    "BUNDLED_NAME",
    "CHAT_TEMPLATE",
    "ENGLISH_CORPUS",
    "SPECIAL_TOKENS",
    "bundled_model_dir",
    "small_config",
    "streamer_home",
    "write_bundled_model",
    "write_tokenizer",
    "write_random_weights",
]

BUNDLED_NAME = "streamer-tiny-random-v1"

SPECIAL_TOKENS = [
    "<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>",
    "<boi>", "<eoi>", "<image_soft_token>", "<video_soft_token>", "<boa>", "<eoa>", "<audio_soft_token>",
]  # fmt: skip
_VOCAB = 512

CHAT_TEMPLATE = """{{ bos_token }}{% for message in messages %}{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}<start_of_turn>{{ role }}
{{ message['content'] }}<end_of_turn>
{% endfor %}{% if add_generation_prompt %}<start_of_turn>model
{% endif %}"""

ENGLISH_CORPUS = """The meeting started with a review of the quarterly roadmap and the open action items.
Alice presented the results of the user study; Bob asked about the latency numbers on mobile.
We decided to ship the streaming endpoint first and to postpone the batch API by two weeks.
Action item: Carol will write the migration plan. Action item: Dan will benchmark the GPU servers.
Questions about the budget, the hiring plan and the launch date were answered at the end.
A robot arm moved left, then right, then stopped; the camera saw a red cube and a blue ball.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 15 20 30 45 60 90 minutes, seconds, hours; 00:00 01:30 12:45.
"""


def small_config(text: dict[str, Any] | None = None, vision: dict[str, Any] | None = None) -> dict[str, Any]:
    """``config.json`` of a small gemma4_unified checkpoint on this module's vocabulary (512 tokens,
    :data:`SPECIAL_TOKENS` as ids): the bundled model's fields, with ``text``/``vision`` fields on top
    (the demo model's shape, :func:`streamer.demo.checkpoint.demo_config`)."""
    ids = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    config: dict[str, Any] = {
        "architectures": ["Gemma4UnifiedForConditionalGeneration"],
        "model_type": "gemma4_unified",
        "dtype": "float32",
        "text_config": {
            "model_type": "gemma4_unified_text",
            "vocab_size": _VOCAB,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "hidden_activation": "gelu_pytorch_tanh",
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-6,
            "pad_token_id": ids["<pad>"],
            "eos_token_id": ids["<eos>"],
            "bos_token_id": ids["<bos>"],
            "tie_word_embeddings": True,
            "rope_parameters": {
                "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                "full_attention": {
                    "rope_type": "proportional",
                    "partial_rotary_factor": 0.25,
                    "rope_theta": 1000000.0,
                },
            },
            "attention_bias": False,
            "sliding_window": 128,
            "layer_types": ["sliding_attention", "sliding_attention", "sliding_attention", "full_attention"],
            "final_logit_softcapping": 30.0,
            "use_bidirectional_attention": "vision",
            "attention_k_eq_v": True,
            "num_kv_shared_layers": 0,
            "use_double_wide_mlp": False,
            "per_layer_config": {"3": {"head_dim": 32, "num_key_value_heads": 1}},
        },
        "vision_config": {
            "model_type": "gemma4_unified_vision",
            "patch_size": 16,
            "pooling_kernel_size": 3,
            "mm_embed_dim": 32,
            "mm_posemb_size": 128,
            "output_proj_dims": 32,
            "rms_norm_eps": 1e-6,
        },
        "audio_config": {"model_type": "gemma4_unified_audio", "audio_embed_dim": 640, "rms_norm_eps": 1e-6},
        "boi_token_id": ids["<boi>"],
        "eoi_token_id": ids["<eoi>"],
        "image_token_id": ids["<image_soft_token>"],
        "video_token_id": ids["<video_soft_token>"],
        "boa_token_id": ids["<boa>"],
        "eoa_token_index": ids["<eoa>"],
        "audio_token_id": ids["<audio_soft_token>"],
        "tie_word_embeddings": True,
    }
    config["text_config"].update(text or {})
    config["vision_config"].update(vision or {})
    return config


def write_tokenizer(
    out: Path,
    *,
    corpus: str = ENGLISH_CORPUS,
    vocab_size: int = _VOCAB,
    template: str = CHAT_TEMPLATE,
    split_digits: bool = False,
) -> None:
    """A byte-level BPE ``tokenizer.json`` trained on ``corpus`` (the specials first, as ids 0..12),
    ``tokenizer_config.json``, the chat template and ``generation_config.json``.

    ``split_digits``: every digit is its own token (times like ``01:30`` become five tokens).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.pre_tokenizer = (
        pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
        if split_digits
        else byte_level
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([corpus] * 4, trainer=trainer)
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(
        jsonio.dumps(
            {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>"}, indent=2
        )
    )
    (out / "chat_template.jinja").write_text(template)
    end_of_turn = SPECIAL_TOKENS.index("<end_of_turn>")
    (out / "generation_config.json").write_text(
        jsonio.dumps({"bos_token_id": 2, "eos_token_id": [1, end_of_turn], "pad_token_id": 0}, indent=2)
    )


def write_random_weights(
    out: Path, config: dict[str, Any], seed: int = 20261126, norm_init: dict[str, float] | None = None
) -> None:
    """``model.safetensors`` of ``config``: N(0, 0.02) matrices, unit norms and layer scalars, zero biases.

    ``norm_init`` maps a tensor-name suffix (e.g. ``"q_norm.weight"``) to another constant for
    those norm scales (a trainable starting point, see :mod:`streamer.demo.checkpoint`).
    """
    import torch
    from safetensors.torch import save_file

    from streamer.model.config import parse_config
    from streamer.model.gemma4_unified import Gemma4Unified

    model = Gemma4Unified(parse_config(config))
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, tensor in sorted(model.state_dict().items()):
        if (
            name.endswith("norm.weight")
            or "layernorm" in name
            or name.endswith("layer_scalar")
            or name.endswith("ln1.weight")
            or name.endswith("ln2.weight")
        ):
            scale = next((v for k, v in (norm_init or {}).items() if name.endswith(k)), 1.0)
            value = torch.full_like(tensor, scale)
        elif name.endswith(".bias"):
            value = torch.zeros_like(tensor)
        else:
            value = torch.randn(tensor.shape, generator=gen) * 0.02
        state[name] = value.contiguous()
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})


def write_bundled_model(out: Path) -> Path:
    """Write the bundled checkpoint into the (new or empty) directory ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    config = small_config()
    (out / "config.json").write_text(jsonio.dumps(config, indent=2))
    write_tokenizer(out)
    write_random_weights(out, config)
    return out


def streamer_home() -> Path:
    """``$STREAMER_HOME``, default ``~/.cache/streamer``: streamer's own files (models, caches)."""
    return Path(os.environ.get("STREAMER_HOME") or Path.home() / ".cache" / "streamer")


def bundled_model_dir() -> Path:
    """Directory of the bundled checkpoint, written on first use."""
    target = streamer_home() / "models" / BUNDLED_NAME
    if (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".writing-", dir=target.parent))
    staging.chmod(0o755)
    try:
        write_bundled_model(staging)
        try:
            staging.rename(target)  # atomic: a concurrent writer may have won the race, which is fine
        except OSError:
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
