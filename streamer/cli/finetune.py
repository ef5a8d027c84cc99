"""``streamer finetune --model DIR --data FILE.jsonl --out DIR``: LoRA or full fine-tuning.

The data format is documented in :mod:`streamer.finetune.data`; the loop in
:mod:`streamer.finetune.trainer`. The output directory is a checkpoint in the source's layout
(LoRA merged; the adapters also in peft's format under ``OUT/adapter``) that every command's
``--model`` takes and transformers loads. ``--resume`` continues an interrupted run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from streamer import jsonio
from streamer.cli.args import SEED, THREADS, device, number
from streamer.errors import InputError

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--model",
        metavar="DIR",
        help="checkpoint to start from (default: $STREAMER_MODEL, else the demo model)",
    )
    add("--data", metavar="FILE.jsonl", required=True, help="training examples (format: see the README)")
    add("--out", metavar="DIR", required=True, help="output checkpoint directory")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--lora",
        type=number(int, 1, 4096),
        metavar="RANK",
        default=None,
        help="LoRA of this rank (default 16)",
    )
    mode.add_argument("--full", action="store_true", help="train every weight instead of LoRA adapters")
    add("--lora-alpha", type=number(int, 1, 1 << 16), default=None, help="LoRA alpha (default: 2 x rank)")
    add(
        "--steps",
        type=number(int, 1, 10_000_000),
        default=None,
        help="optimizer steps (default: --epochs passes over the data)",
    )
    add(
        "--epochs",
        type=number(float, 0.0, 10_000.0, lo_open=True),
        default=1.0,
        help="passes over the data when --steps is not given (default 1)",
    )
    add(
        "--lr",
        type=number(float, 0.0, 1.0, lo_open=True),
        default=None,
        help="peak learning rate (default: 2e-4 LoRA, 1e-4 full)",
    )
    add("--min-lr", type=number(float, 0.0, 1.0), default=0.1, metavar="FRACTION",
        help="the cosine schedule ends at this share of --lr (default 0.1)")  # fmt: skip
    add(
        "--warmup",
        type=number(int, 0, 10_000_000),
        default=None,
        metavar="STEPS",
        help="warm-up steps (default: 5%% of the steps, <= 100)",
    )
    add("--batch-tokens", type=number(int, 1, 1 << 24), default=4096, metavar="N",
        help="sequence tokens per optimizer step, whole examples (default 4096)")  # fmt: skip
    add("--weight-decay", type=number(float, 0.0, 10.0), default=0.0, help="AdamW weight decay (default 0)")
    add(
        "--grad-clip",
        type=number(float, 0.0, 1e6, lo_open=True),
        default=1.0,
        help="max gradient norm (default 1)",
    )
    add("--seed", type=SEED, default=0, help="data order and adapter initialisation (default 0)")
    add(
        "--save-every",
        type=number(int, 1, 10_000_000),
        default=100,
        metavar="STEPS",
        help="steps between saved states (default 100)",
    )
    add("--resume", action="store_true", help="continue the interrupted run in --out")
    add(
        "--media-cache",
        metavar="DIR",
        help="where generated demo media is written (default: DATA_DIR/.media-cache)",
    )
    add(
        "--dtype", default="float32", choices=["float32", "bfloat16"], help="training dtype (default float32)"
    )
    add("--device", type=device, default="cpu", help="torch device, e.g. cpu, cuda (default cpu)")
    add("--threads", type=THREADS, default=None, help="CPU threads for torch (default: torch's choice)")
    add("--quiet", action="store_true", help="no progress bar")
    add("--json", action="store_true", help="print the run's figures as one JSON object")


def run(args: argparse.Namespace) -> int:
    import torch

    from streamer.cli.common import default_model_dir
    from streamer.finetune.trainer import FinetuneConfig, finetune

    if args.threads:
        torch.set_num_threads(args.threads)
    full = args.full
    rank = None if full else (args.lora if args.lora is not None else 16)
    lr = args.lr if args.lr is not None else (1e-4 if full else 2e-4)
    config = FinetuneConfig(
        model_dir=Path(args.model) if args.model else default_model_dir(), data=Path(args.data),
        out=Path(args.out), lora_rank=rank, lora_alpha=args.lora_alpha, steps=args.steps, epochs=args.epochs,
        lr=lr, min_lr_fraction=args.min_lr, warmup_steps=args.warmup, batch_tokens=args.batch_tokens,
        weight_decay=args.weight_decay, grad_clip=args.grad_clip, seed=args.seed, save_every=args.save_every,
        dtype=args.dtype, device=args.device, media_cache=Path(args.media_cache) if args.media_cache else None,
    )  # fmt: skip
    if not config.data.is_file():
        raise InputError(f"{config.data}: no such file")
    result = finetune(config, resume=args.resume, quiet=args.quiet)
    if args.json:
        figures = {k: v for k, v in vars(result).items() if k != "history"}
        print(jsonio.dumps(figures))
    else:
        print(
            f"{result.mode}: {result.steps} steps, {result.examples} examples, {result.tokens:,} tokens in "
            f"{result.train_s:.1f} s ({result.cpu_s:.0f} CPU s, {result.tokens_per_s:,.0f} tok/s); trainable {result.trainable_params:,} "
            f"of {result.total_params:,} parameters; peak RSS {result.peak_rss_mb:,.0f} MiB; "
            f"final loss {result.final_loss:.4f} → {result.out}",
            file=sys.stderr,
        )
    return 0
