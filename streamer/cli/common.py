"""Arguments and helpers shared by several commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from streamer.cli.args import THREADS, device

__all__ = ["MODEL_ENV", "add_model_arguments", "default_model_dir", "load_engine", "media_policy"]


MODEL_ENV = "STREAMER_MODEL"  # a checkpoint directory commands use when --model is not given


def default_model_dir() -> Path:
    """``$STREAMER_MODEL`` if set; else the bundled demo model (trained on the "shapes and beeps"
    task); else, in a checkout that has none, the tiny random checkpoint (meaningless answers)."""
    import os

    from streamer.demo.checkpoint import demo_model_dir
    from streamer.model.bundled import bundled_model_dir

    if os.environ.get(MODEL_ENV):
        return Path(os.environ[MODEL_ENV])
    return demo_model_dir() or bundled_model_dir()


def add_model_arguments(parser: argparse.ArgumentParser, default_dtype: str = "auto") -> None:
    parser.add_argument(
        "--model",
        metavar="DIR",
        help="checkpoint directory (config.json + safetensors); default: $STREAMER_MODEL, else the bundled "
        "demo model",
    )
    parser.add_argument(
        "--dtype",
        default=default_dtype,
        choices=["auto", "float32", "bfloat16", "float16"],
        help=f"weight dtype (default: {default_dtype}; auto = the checkpoint's own)",
    )
    parser.add_argument(
        "--device", type=device, default="cpu", help="torch device: cpu, cuda, cuda:N, mps (default: cpu)"
    )
    parser.add_argument(
        "--threads",
        type=THREADS,
        default=None,
        help="CPU threads for torch, 1-1024 (default: torch's choice)",
    )


def load_engine(args: argparse.Namespace, config=None):  # noqa: ANN001, ANN201 - EngineConfig, Engine (lazy)
    """Model, tokenizer and a started engine from the common model arguments (stopped at exit)."""
    import torch

    from streamer.engine.engine import Engine
    from streamer.model.tokenizer import load_tokenizer
    from streamer.model.weights import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = args.model or default_model_dir()
    loaded = load_model(model_dir, dtype=args.dtype, device=args.device)
    engine = Engine(loaded, load_tokenizer(model_dir), config)
    engine.start()
    return engine


def media_policy(fps: float | None = None, frames: int | None = None, scene: float | None = None):  # noqa: ANN201
    """A SamplingPolicy from CLI values, with bad values as InputError."""
    from streamer.errors import InputError
    from streamer.media import SamplingPolicy

    try:
        if frames is not None:
            return SamplingPolicy.uniform(frames)
        if scene is not None:
            return SamplingPolicy.scene(scene)
        return SamplingPolicy.fixed_rate(fps if fps is not None else 1.0)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
