"""LoRA vs full fine-tuning on one small adaptation: teach the demo model a fifth colour (purple).

``python -m streamer.demo.adapt [--model DIR] [--work DIR]`` writes clips where the shape is
purple (half of them) or one of the four known colours, each with the five questions, then runs
``streamer finetune --lora 16`` and ``streamer finetune --full`` on the same data for the same
steps, and measures each result on held-out clips through ``streamer ask`` (free-form, greedy):
"What colour is the shape?" on purple clips, and all five questions on clips of the four known
colours (what the adaptation must not break). Prints a Markdown table and writes
``WORK/adapt.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from streamer import jsonio
from streamer.demo.dataset import clip_line, materialize, recording_of

__all__ = ["main", "RUNS"]

PURPLE_SEED = 500_000  # training clips; held-out clips use HELD_OUT + i
HELD_OUT = 950_000
RUNS: dict[str, list[str]] = {
    "LoRA r=16": ["--lora", "16", "--lr", "2e-3"],
    "full": ["--full", "--lr", "3e-4"],
}
_COMMON = [
    "--steps",
    "150",
    "--batch-tokens",
    "1400",
    "--warmup",
    "10",
    "--threads",
    "1",
    "--quiet",
    "--json",
]


def write_data(work: Path, clips: int) -> Path:
    import numpy as np

    media = work / "data" / "media"
    rng = np.random.default_rng(5)
    lines = []
    for i in range(clips):
        spec: dict[str, Any] = {"kind": "clip", "seed": PURPLE_SEED + i}
        if i % 2 == 0:
            spec["colour"] = "purple"
        path = materialize(spec, media)
        lines.append(clip_line(recording_of(spec), str(path.relative_to(work / "data")), rng))
    out = work / "data" / "train.jsonl"
    out.write_text("".join(jsonio.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return out


def _run(model: Path, data: Path, out: Path, args: list[str]) -> dict[str, Any]:
    import contextlib
    import io

    from streamer.cli import main as cli

    if (out / "finetune.json").is_file():
        return dict(jsonio.loads((out / "finetune.json").read_text(encoding="utf-8")))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli(
            ["finetune", "--model", str(model), "--data", str(data), "--out", str(out), *args, *_COMMON]
        )
    if code != 0:
        raise SystemExit(f"streamer finetune {' '.join(args)} failed")
    return dict(jsonio.loads(buf.getvalue()))


def _score(model: Path, work: Path, held_out: int) -> dict[str, float]:
    from streamer.demo.evaluate import ask, evaluate_clips

    cache = work / "heldout"
    right = 0
    for i in range(held_out):
        path = materialize({"kind": "clip", "seed": HELD_OUT + i, "colour": "purple"}, cache)
        right += ask(model, path, "What colour is the shape?") == "purple"
    known = evaluate_clips(model, [HELD_OUT + 1000 + i for i in range(held_out)], cache)
    accuracy = known.accuracy()
    return {"purple": right / held_out, "known": sum(accuracy.values()) / len(accuracy), **accuracy}


def main(argv: list[str] | None = None) -> int:
    from streamer.cli.common import default_model_dir

    parser = argparse.ArgumentParser(
        prog="python -m streamer.demo.adapt", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="the model to adapt (default: the demo model)"
    )
    parser.add_argument("--work", type=Path, default=Path("out/demo-adapt"))
    parser.add_argument("--clips", type=int, default=200, help="training clips (half purple)")
    parser.add_argument("--held-out", type=int, default=20, help="held-out clips per measure")
    args = parser.parse_args(argv)
    model = args.model or default_model_dir()
    data = write_data(args.work, args.clips)
    rows = {
        "before": {
            "trainable_params": 0,
            "peak_rss_mb": None,
            "train_s": 0.0,
            **_score(model, args.work, args.held_out),
        }
    }
    for name, run_args in RUNS.items():
        t0 = time.perf_counter()
        out = args.work / name.split()[0].lower()
        figures = _run(model, data, out, run_args)
        rows[name] = {**{k: figures[k] for k in ("trainable_params", "peak_rss_mb", "train_s", "total_params")},
                      **_score(out, args.work, args.held_out), "wall_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
    (args.work / "adapt.json").write_text(jsonio.dumps(rows, indent=1), encoding="utf-8")
    print(
        "| | trainable params | peak RSS | train time | purple (held-out) | four known colours, 5 questions |"
    )
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        rss = f"{r['peak_rss_mb']:.0f} MiB" if r["peak_rss_mb"] else "–"
        print(
            f"| {name} | {r['trainable_params']:,} | {rss} | {r['train_s']:.0f} s | {r['purple']:.0%} | {r['known']:.0%} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
