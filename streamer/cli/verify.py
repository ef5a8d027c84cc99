"""``streamer verify --model DIR [--json]``: streamer vs the transformers reference on one checkpoint."""

from __future__ import annotations

import argparse
import sys

from streamer import jsonio
from streamer.cli.args import SEED
from streamer.cli.common import add_model_arguments, default_model_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, default_dtype="float32")
    parser.add_argument("--seed", type=SEED, default=0, help="seed of the random test inputs")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args: argparse.Namespace) -> int:
    from streamer.verify import run_verify

    progress = None if args.json else (lambda name: print(f"  running {name} ...", file=sys.stderr))
    report = run_verify(
        args.model or default_model_dir(),
        dtype=args.dtype,
        device=args.device,
        seed=args.seed,
        progress=progress,
    )
    if args.json:
        print(jsonio.dumps(report.to_json()))
    else:
        print(f"reference: {report.reference}   dtype: {report.dtype}")
        print(f"{'case':<22}{'tokens':>8}{'max |Δlogit|':>16}{'tolerance':>12}  greedy  result")
        for c in report.cases:
            print(
                f"{c.name:<22}{c.tokens:>8}{c.max_abs_diff:>16.3e}{c.tolerance:>12.1e}  "
                f"{'same' if c.greedy_match else 'DIFF':<6}  {'ok' if c.passed else 'FAIL'}"
            )
        print("PASS" if report.passed else "FAIL")
    return 0 if report.passed else 1
