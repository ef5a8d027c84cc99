"""Train the bundled demo model from scratch: ``python -m streamer.demo.train [--install]``.

One command, five stages, each skipped when its output exists (so an interrupted run continues):

1. **data**: the demo recordings and one JSONL file per stage under ``WORK/data``;
2. **init**: the untrained checkpoint (:func:`streamer.demo.checkpoint.write_initial_model`);
3. **train**: ``streamer finetune --full`` for each of :data:`STAGES` (``--resume`` after an interruption);
4. **eval**: held-out clips and timelines (seeds never trained on) through ``streamer ask`` and
   ``streamer summarize`` (:mod:`streamer.demo.evaluate`) → ``WORK/eval.json``.

``--install`` copies the trained checkpoint, its training figures and its evaluation into
``streamer/assets/streamer-shapes-beeps-v1/``, where every command finds it as the default model.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from streamer import jsonio
from streamer.demo.checkpoint import DEMO_DIR, write_initial_model
from streamer.demo.dataset import DatasetPlan, write_dataset

__all__ = [
    "CLIPS",
    "FOCUS",
    "TIMELINES",
    "VIEWS",
    "ONSETS",
    "STAGES",
    "HELD_OUT_SEED",
    "DEMO_RECORDING_SEED",
    "main",
]

# Five stages, each one `streamer finetune --full` run starting from the previous one's output:
# perception on clips (all five questions after the clip, and for 60 % of them also some while it
# plays), on their sound alone (beeps, tone) and on their pictures alone (colour, shape, motion);
# a focus on the slow skills with cheap views (one second of pictures for shape, three for
# motion, sound alone for counting); then timelines (notes + summary as `streamer summarize` asks
# them; "colour at" questions) mixed with clips again so that nothing is forgotten; views and
# onsets (below). Short timelines (12-35 s, 2-4 chunks) give many more notes per second of training
# than long ones: a first recipe with 15-45 s timelines and 700 one-example steps never learned
# the notes' format.
# Training media is encoded at 5 fps (timelines at 1 fps): the frames a 1 fps sampler takes are
# the same (every drawn rate, 10-30 fps, has a frame on each whole second), for a fraction of
# the encoding; evaluation media keeps the drawn rate.
CLIPS = DatasetPlan(clips=2500, listen=5000, watch=2500, seed=100_000, early=0.6, video_fps=5)
FOCUS = DatasetPlan(clips=1000, listen=2000, glance=4000, peek=4000, seed=100_000, early=0.6, video_fps=5)
TIMELINES = DatasetPlan(
    clips=240, listen=240, notes=1200, moments=300, seed=100_000, timeline_seed=600_000,
    timeline_s=(12.0, 35.0), chunk_s=(10.0, 15.0), questions_per_moments=6, early=0.6, video_fps=1,
)  # fmt: skip
# A last stage drills the slow skills on their cheapest views, with many more examples than the
# focus stage gave them: shape and colour on the first second of 20,000 clips of their own (each
# encoded as a one-second file), beeps and tone on the sound alone, with clips and timelines mixed
# in so that nothing is forgotten. Measured in memory from the three-stage model on fresh clips:
# one-frame shape went from 37 % to 84 % in 17,000 glances (9 min), beeps from 44 % to 80 % in
# 6,000 listens (4 min); a drill with 5,000 glances of the focus stage's clips had left shape at 40 %.
VIEWS = DatasetPlan(
    clips=1000, listen=5000, glance=20_000, glance_seed=300_000, notes=150, moments=100, seed=100_000,
    timeline_seed=600_000, timeline_s=(12.0, 35.0), chunk_s=(10.0, 15.0), questions_per_moments=6,
    early=0.6, video_fps=5, timeline_fps=1,
)  # fmt: skip
# A fifth stage teaches the notes' times: short windows cut from 30-120 s timelines at whole
# seconds and trained at their own times ("start_s"), asking "When did the shape appear?" over a
# few seconds of pictures, and the notes question over one whole appearance; replay keeps the rest.
# Measured in memory from the four-stage model (2-5 frames at offsets up to 10 min, one showing
# the shape): the time of the shape's frame went from 0 to 92 % in 7,500 examples (10 min), where
# asking it after whole timelines had stayed at the majority answer. Measured after this stage (40
# held-out clips, 4 timelines): motion 15 -> 35 %, "colour at" 50 -> 69 %; held-out windows answer
# "When did the shape appear?" 90 % right, but notes over real chunks still get few times right.
ONSETS = DatasetPlan(
    clips=400, listen=1000, glance=3000, glance_seed=300_000, notes=150, moments=150, onsets=800,
    onset_notes=300, seed=100_000, timeline_seed=600_000, timeline_s=(12.0, 35.0), chunk_s=(10.0, 15.0),
    questions_per_moments=6, early=0.6, video_fps=5, timeline_fps=1,
)  # fmt: skip
# (stage, data, `streamer finetune --full` settings); 1 CPU thread unless a stage says otherwise.
STAGES: tuple[tuple[str, DatasetPlan, dict[str, Any]], ...] = (
    ("perception", CLIPS, {"steps": 2200, "lr": 8e-4, "warmup": 100, "batch_tokens": 1400, "seed": 0}),
    ("focus", FOCUS, {"steps": 1200, "lr": 5e-4, "warmup": 20, "batch_tokens": 1400, "seed": 2}),
    ("timelines", TIMELINES,
     {"steps": 700, "lr": 6e-4, "warmup": 30, "batch_tokens": 2500, "seed": 3, "threads": 2}),
    ("views", VIEWS,
     {"steps": 3300, "lr": 5e-4, "warmup": 30, "batch_tokens": 1400, "seed": 4, "threads": 2}),
    ("onsets", ONSETS,
     {"steps": 2400, "lr": 5e-4, "warmup": 30, "batch_tokens": 2000, "seed": 5, "threads": 2}),
)  # fmt: skip
HELD_OUT_SEED = 900_000  # evaluation recordings: seeds far from every training seed
DEMO_RECORDING_SEED = 702  # the timeline `make run` summarizes (python examples/make_demo_recording.py)
_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
          "generation_config.json")  # fmt: skip
_FIGURES = ("steps", "examples", "tokens", "trained_tokens", "train_s", "cpu_s", "peak_rss_mb", "final_loss")


def _log(message: str) -> None:
    print(f"[demo.train {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _finetune(work: Path, stage: str, start: Path, settings: dict[str, Any], threads: int) -> Path:
    from streamer.cli import main as cli

    out = work / stage
    if (out / "finetune.json").is_file():
        _log(f"{stage}: {out} is done")
        return out
    argv = ["finetune", "--model", str(start), "--data", str(work / "data" / f"{stage}.jsonl"),
            "--out", str(out), "--full", "--threads", str(threads), "--save-every", "200"]  # fmt: skip
    argv += [f"--{k.replace('_', '-')}={v}" for k, v in settings.items()]
    if (out / ".finetune-state").is_dir():
        argv.append("--resume")
    _log(f"{stage}: streamer " + " ".join(argv))
    if cli(argv) != 0:
        raise SystemExit("streamer finetune failed")
    return out


def evaluate(model: Path, work: Path, *, clips: int, timelines: int, threads: int) -> dict[str, Any]:
    """Held-out accuracy (see :mod:`streamer.demo.evaluate`), written to ``work/eval.json``."""
    from streamer.demo.evaluate import evaluate_clips, evaluate_moments, evaluate_summaries

    cache = work / "heldout"
    seeds = [HELD_OUT_SEED + i for i in range(clips)]
    t0 = time.perf_counter()
    free = evaluate_clips(model, seeds, cache, threads=threads)
    chosen = evaluate_clips(model, seeds, cache, choices=True, threads=threads)
    specs = [{"kind": "timeline", "seed": HELD_OUT_SEED + i} for i in range(timelines)]
    moments = evaluate_moments(model, specs, cache, threads=threads)
    summaries = evaluate_summaries(model, specs, cache, threads=threads)
    report = {
        "clips": clips, "timelines": timelines, "free_form": free.to_json(), "choices": chosen.to_json(),
        "colour_at": moments.to_json(), "summaries": summaries, "eval_s": round(time.perf_counter() - t0, 1),
    }  # fmt: skip
    (work / "eval.json").write_text(jsonio.dumps(report, indent=1), encoding="utf-8")
    return report


def install(model: Path, work: Path) -> Path:
    """Copy the trained checkpoint (and its figures) to where commands find the default model."""
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    for name in _FILES:
        shutil.copyfile(model / name, DEMO_DIR / name)
    figures = jsonio.loads((model / "finetune.json").read_text(encoding="utf-8"))
    figures.pop("out", None)  # a path on the training machine
    (DEMO_DIR / "finetune.json").write_text(jsonio.dumps(figures, indent=1), encoding="utf-8")
    if (work / "eval.json").is_file():
        shutil.copyfile(work / "eval.json", DEMO_DIR / "eval.json")
    stages = {}
    for stage, _, _ in STAGES:
        figures = jsonio.loads((work / stage / "finetune.json").read_text(encoding="utf-8"))
        stages[stage] = {k: figures[k] for k in _FIGURES}
    (DEMO_DIR / "training.json").write_text(jsonio.dumps(stages, indent=1), encoding="utf-8")
    return DEMO_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m streamer.demo.train", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--work", type=Path, default=Path("out/demo-train"), help="working directory")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for training (default 1)")
    parser.add_argument(
        "--jobs", type=int, default=1, help="processes writing the training media (default 1)"
    )
    parser.add_argument("--eval-clips", type=int, default=40, help="held-out clips to evaluate (default 40)")
    parser.add_argument("--eval-timelines", type=int, default=6, help="held-out timelines (default 6)")
    parser.add_argument("--no-eval", action="store_true", help="skip the evaluation")
    parser.add_argument(
        "--install", action="store_true", help="install the result as the bundled default model"
    )
    args = parser.parse_args(argv)
    work = args.work
    t0 = time.perf_counter()
    for stage, plan, _ in STAGES:
        if not (work / "data" / f"{stage}.jsonl").is_file():
            _log(f"data: {stage}: {plan}")
            write_dataset(work / "data", plan, jobs=args.jobs, name=f"{stage}.jsonl")
    _log(f"data: ready ({time.perf_counter() - t0:.0f} s)")
    model = work / "init"
    if not (model / "model.safetensors").is_file():
        write_initial_model(model, seed=0)
    for stage, _, settings in STAGES:
        model = _finetune(work, stage, model, settings, args.threads)
        _log(f"{stage}: done ({time.perf_counter() - t0:.0f} s)")
    if not args.no_eval:
        report = evaluate(
            model, work, clips=args.eval_clips, timelines=args.eval_timelines, threads=args.threads
        )
        _log(f"eval: free-form {report['free_form']['accuracy']}")
        _log(f"eval: choices {report['choices']['accuracy']}")
        _log(
            f"eval: colour at {report['colour_at']['accuracy']}; summaries listed {report['summaries']['listed']:.2f}"
        )
    if args.install:
        _log(f"installed into {install(model, work)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
