"""The random mid-size checkpoint the benchmarks share, written once with transformers.

``save_pretrained`` writes it so tensor names and config fields are the real ones; it is cached
under ``--cache-dir`` keyed by shape, seed and transformers version. transformers is needed
(the benchmarks compare against it); without it :func:`require_transformers` raises one
:class:`StreamerError`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from streamer import jsonio
from streamer.cli.args import number
from streamer.errors import StreamerError

__all__ = [
    "Shape",
    "add_shape_arguments",
    "ensure_checkpoint",
    "require_transformers",
    "shape_of",
    "DEFAULT_CACHE",
]

MAX_POSITIONS = 32_768  # max_position_embeddings written into the random checkpoint
SPECIAL_TOKENS = 7  # boi, eoi, image, video, boa, eoa, audio: the top ids of the vocabulary
_FORMAT = 1  # bump when the written checkpoint changes, so old cached ones are not reused
DEFAULT_CACHE = Path.home() / ".cache" / "streamer" / "bench-model"


@dataclass(frozen=True)
class Shape:
    """Decoder shape of the random checkpoint (the vision and audio embedders are small)."""

    hidden: int  # hidden_size
    layers: int  # num_hidden_layers (every 6th and the last are full attention)
    heads: int  # num_attention_heads
    kv_heads: int  # num_key_value_heads
    head_dim: int  # head width of sliding layers
    global_head_dim: int  # head width of full layers
    intermediate: int  # MLP width
    sliding_window: int  # tokens
    vocab: int  # vocab_size

    def text_config(self) -> dict[str, Any]:
        return dict(
            vocab_size=self.vocab, hidden_size=self.hidden, intermediate_size=self.intermediate,
            num_hidden_layers=self.layers, num_attention_heads=self.heads, num_key_value_heads=self.kv_heads,
            head_dim=self.head_dim, global_head_dim=self.global_head_dim, sliding_window=self.sliding_window,
            max_position_embeddings=MAX_POSITIONS,
        )  # fmt: skip

    def special_tokens(self) -> dict[str, int]:
        names = ("boi_token_id", "eoi_token_id", "image_token_id", "video_token_id", "boa_token_id",
                 "eoa_token_index", "audio_token_id")  # fmt: skip
        return {name: self.vocab - SPECIAL_TOKENS + i for i, name in enumerate(names)}


def add_shape_arguments(parser: argparse.ArgumentParser) -> None:
    shape = parser.add_argument_group("random checkpoint shape")
    width, count = number(int, 1, 1 << 16), number(int, 1, 1024)
    head = number(int, 2, 4096)
    shape.add_argument("--hidden", type=width, default=512, help="hidden size (default: 512)")
    shape.add_argument("--layers", type=count, default=12, help="decoder layers (default: 12)")
    shape.add_argument("--heads", type=count, default=8, help="attention heads (default: 8)")
    shape.add_argument("--kv-heads", type=count, default=4, help="key/value heads (default: 4)")
    shape.add_argument("--head-dim", type=head, default=64, help="head width, sliding layers (default: 64)")
    shape.add_argument(
        "--global-head-dim", type=head, default=128, help="head width, full layers (default: 128)"
    )
    shape.add_argument(
        "--intermediate", type=number(int, 1, 1 << 18), default=2048, help="MLP width (default: 2048)"
    )
    shape.add_argument(
        "--sliding-window",
        type=number(int, 1, 1 << 20),
        default=512,
        help="sliding window in tokens (default: 512)",
    )
    shape.add_argument(
        "--vocab", type=number(int, 4 * SPECIAL_TOKENS, 1 << 21), default=32_000,
        help="vocabulary size (default: 32000)",
    )  # fmt: skip
    shape.add_argument(
        "--cache-dir", type=Path, default=DEFAULT_CACHE,
        help=f"where the random checkpoint is written once and reused (default: {DEFAULT_CACHE})",
    )  # fmt: skip


def shape_of(args: argparse.Namespace) -> Shape:
    shape = Shape(
        hidden=args.hidden, layers=args.layers, heads=args.heads, kv_heads=args.kv_heads, head_dim=args.head_dim,
        global_head_dim=args.global_head_dim, intermediate=args.intermediate,
        sliding_window=args.sliding_window, vocab=args.vocab,
    )  # fmt: skip
    bad = [name for name, value in asdict(shape).items() if value <= 0]
    if bad:
        raise StreamerError(f"checkpoint shape must be positive: {', '.join(bad)}")
    if shape.vocab < 4 * SPECIAL_TOKENS:
        raise StreamerError(f"--vocab must be at least {4 * SPECIAL_TOKENS}")
    return shape


def require_transformers() -> Any:
    """The transformers module with Gemma 4 Unified importable, else one clear StreamerError."""
    try:
        import transformers
    except ImportError as exc:
        raise StreamerError(
            "this benchmark compares against the reference: pip install 'transformers>=5.24' (or streamer[test])"
        ) from exc
    try:
        transformers.Gemma4UnifiedConfig, transformers.Gemma4UnifiedForConditionalGeneration  # noqa: B018
    except (ImportError, AttributeError, RuntimeError) as exc:
        # transformers hides the real cause (often a broken torchvision wheel) in __cause__.
        cause = exc.__cause__ or exc
        raise StreamerError(
            f"transformers {transformers.__version__} cannot import Gemma4UnifiedForConditionalGeneration "
            f"(needs >= 5.24): {type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
        ) from exc
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


def ensure_checkpoint(transformers: Any, shape: Shape, cache_dir: Path, seed: int) -> Path:
    """The checkpoint of ``shape`` and ``seed`` under ``cache_dir``, written on first use (fp32)."""
    key = jsonio.dumps([_FORMAT, asdict(shape), seed, transformers.__version__], sort_keys=True)
    path = (
        cache_dir / f"gemma4u-h{shape.hidden}-l{shape.layers}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"
    )
    if (path / "config.json").is_file():
        return path
    import torch

    config = transformers.Gemma4UnifiedConfig(
        text_config=shape.text_config(),
        vision_config=dict(mm_embed_dim=48, output_proj_dims=48, mm_posemb_size=64),
        audio_config=dict(),
        **shape.special_tokens(),
    )
    torch.manual_seed(seed)
    model = transformers.Gemma4UnifiedForConditionalGeneration(config)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".writing-", dir=cache_dir))
        model.save_pretrained(tmp)
        os.replace(tmp, path)  # atomic: a reader never sees half a checkpoint
    except OSError as exc:
        if (path / "config.json").is_file():  # another run wrote it first
            return path
        raise StreamerError(f"cannot write the benchmark checkpoint under {cache_dir}: {exc}") from exc
    return path
