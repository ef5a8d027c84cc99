"""Arguments and helpers shared by several commands."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_model_arguments", "default_model_dir"]


def default_model_dir() -> Path:
    """The tiny bundled checkpoint (random weights: its answers are meaningless)."""
    from streamer.model.bundled import bundled_model_dir

    return bundled_model_dir()


def add_model_arguments(parser: argparse.ArgumentParser, default_dtype: str = "auto") -> None:
    parser.add_argument(
        "--model",
        metavar="DIR",
        help="checkpoint directory (config.json + safetensors); default: the tiny bundled model",
    )
    parser.add_argument(
        "--dtype",
        default=default_dtype,
        choices=["auto", "float32", "bfloat16", "float16"],
        help=f"weight dtype (default: {default_dtype}; auto = the checkpoint's own)",
    )
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1 (default: cpu)")
