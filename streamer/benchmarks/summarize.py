"""``streamer bench summarize``: summarize a long generated 720p recording; x real time, phases, peak RSS.

Generates (once, cached, shared with ``bench media``) N minutes of 1280x720 25 fps H.264 + 48 kHz
AAC meeting, then runs the summarize pipeline on it in a child process (its peak RSS is its own
VmHWM) with the chunk length, fps and threads given. The child times each phase by wrapping the
engine's functions for the run (no engine code changes):

    decode    media decoding, in its own thread ahead of the model (busy time); ``decode_wait``
              is the part of it the model waited for (on the critical path)
    embed     frame patchify on push + embedding of each prefill chunk (embed_layout)
    prefill   the model forward of prefill chunks (SessionContext.prefill minus embed)
    generate  decode steps (decode_batch) and sampling, notes and summary
    other     the rest: pushes, scheduling, snapshots, rendering

It then estimates the x real time on one H100 for the 12B from the measured token counts and
stated per-token costs (see ``_h100_estimate``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from streamer import jsonio
from streamer.benchmarks.memory import peak_rss_mb
from streamer.cli.args import FPS, MINUTES, THREADS, number
from streamer.errors import StreamerError

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--minutes", type=MINUTES, default=60.0, help="length of the generated recording (60)"
    )
    parser.add_argument(
        "--chunk-minutes",
        type=number(float, 0.02, 24 * 60.0),
        default=1.0,
        help="minutes per chunk of notes (1)",
    )
    parser.add_argument("--fps", type=FPS, default=1.0, help="video frames sampled per second (1)")
    parser.add_argument(
        "--threads", type=THREADS, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument(
        "--model", metavar="DIR", help="checkpoint directory (default: the bundled tiny model)"
    )
    parser.add_argument(
        "--cache-dir", default=None, help="where the generated file is kept (default: user cache)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")


def run(args: argparse.Namespace) -> int:
    from streamer.benchmarks.media import cached_recording

    path = cached_recording(args.cache_dir, args.minutes)
    figures = _measure(path, args)
    figures["h100_estimate"] = _h100_estimate(figures)
    if args.json:
        print(jsonio.dumps(figures))
    else:
        _print(figures)
    return 0


def _measure(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    spec = {"path": str(path), "chunk_minutes": args.chunk_minutes, "fps": args.fps, "threads": args.threads,
            "model": args.model}  # fmt: skip
    code = f"from streamer.benchmarks.summarize import _child; _child({jsonio.dumps(spec)!r})"
    proc = subprocess.run(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, env=env, text=True, check=False
    )
    if proc.returncode != 0:
        raise StreamerError(f"the summarize child failed with exit code {proc.returncode}")
    return jsonio.loads(proc.stdout.strip().splitlines()[-1])


# ---- the child ------------------------------------------------------------------------------------
class _Timers:
    """Wrap module-level functions / methods to add their wall time to named buckets."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, owner: Any, attr: str, bucket: str) -> None:
        original = getattr(owner, attr)

        def timed(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                self.seconds[bucket] = self.seconds.get(bucket, 0.0) + time.perf_counter() - t0
                self.calls[bucket] = self.calls.get(bucket, 0) + 1

        setattr(owner, attr, timed)


def _child(spec_json: str) -> None:
    spec = jsonio.loads(spec_json)
    t_start = time.perf_counter()
    import torch

    import streamer.engine.context as context
    import streamer.engine.core as core_mod
    import streamer.engine.engine as engine_mod
    import streamer.engine.sequence as sequence
    from streamer.cli.common import default_model_dir
    from streamer.model.tokenizer import load_tokenizer
    from streamer.model.weights import load_model
    from streamer.summarize import StateDir, SummarizeOptions, render_markdown, summarize_recording

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    model_dir = spec["model"] or default_model_dir()
    t0 = time.perf_counter()
    engine = engine_mod.Engine(load_model(model_dir), load_tokenizer(model_dir))
    engine.start()
    load_s = time.perf_counter() - t0
    timers = _Timers()
    timers.wrap(sequence, "image_to_patches", "patchify")
    timers.wrap(context, "embed_layout", "embed_layout")
    timers.wrap(context.SessionContext, "prefill", "prefill_total")
    timers.wrap(core_mod, "decode_batch", "generate_forward")
    timers.wrap(core_mod, "sample", "sample")
    options = SummarizeOptions.from_minutes(spec["chunk_minutes"], fps=spec["fps"])
    with tempfile.TemporaryDirectory() as tmp:
        t0, cpu0 = time.perf_counter(), time.process_time()
        result = summarize_recording(engine, spec["path"], options, state_dir=StateDir(Path(tmp) / "state"))
        render_markdown(result)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    s = timers.seconds
    phases = {
        "decode_wait": result.timings.get("decode_wait_s", 0.0),
        "embed": s.get("patchify", 0.0) + s.get("embed_layout", 0.0),
        "prefill": s.get("prefill_total", 0.0) - s.get("embed_layout", 0.0),
        "generate": s.get("generate_forward", 0.0) + s.get("sample", 0.0),
    }
    phases["other"] = wall - sum(phases.values())
    phases["decode (in its thread)"] = result.timings.get("decode_s", 0.0)
    out = {
        "file": spec["path"], "media_s": result.duration_s, "chunk_minutes": spec["chunk_minutes"],
        "fps": spec["fps"], "threads": torch.get_num_threads(), "wall_s": wall,
        "x_realtime": result.duration_s / wall, "cpu_s": cpu, "x_realtime_cpu": result.duration_s / cpu,
        "model_load_s": load_s, "budget": result.tokens["budget"],
        "process_s": time.perf_counter() - t_start, "phases_s": phases, "tokens": result.tokens,
        "chunks": len(result.notes), "summary_levels": result.summary_levels,
        "peak_rss_mb": peak_rss_mb(), "pipeline_timings_s": result.timings,
        "calls": timers.calls, "model": result.model["name"],
    }  # fmt: skip
    print(jsonio.dumps(out))


# ---- the H100 estimate ----------------------------------------------------------------------------
H100 = {
    "params": 12e9,  # Gemma 4 12B parameters
    "weight_bytes": 24e9,  # bf16 weights, read once per decode step
    "hbm_bytes_per_s": 3.35e12,  # H100 SXM HBM3 bandwidth
    "prefill_flops_per_s": 700e12,  # effective bf16 dense throughput for prefill (~70 % of 989 TFLOP/s)
    "kv_bytes_per_token": 64 * 1024,  # 8 full-attention layers x 2 x 8 KV heads x 256 x 2 bytes
    "context_tokens": 16_384,  # the 1 GiB default budget / 64 KiB per token
}


def _h100_estimate(f: dict[str, Any]) -> dict[str, Any]:
    """x real time of the same job on one H100 with the 12B, from this run's token counts."""
    minutes = f["media_s"] / 60
    tokens = f["tokens"]
    generated = tokens["notes"] + tokens["summary"]
    prefilled = tokens["context"] - tokens["notes"]  # media, prompts and questions
    prefill_s = prefilled * 2 * H100["params"] / H100["prefill_flops_per_s"]
    step_bytes = H100["weight_bytes"] + H100["kv_bytes_per_token"] * H100["context_tokens"]
    per_token_s = step_bytes / H100["hbm_bytes_per_s"]
    generate_s = generated * per_token_s
    decode_s = f["phases_s"]["decode (in its thread)"]  # CPU media decoding, as measured here
    gpu_s = prefill_s + generate_s
    media_s = f["media_s"]
    return {
        "assumptions": H100,
        "prefill_tokens_per_min": prefilled / minutes,
        "generated_tokens_per_min": generated / minutes,
        "prefill_s_per_token": 2 * H100["params"] / H100["prefill_flops_per_s"],
        "decode_s_per_token": per_token_s,
        "gpu_s": gpu_s,
        "prefill_s": prefill_s,
        "generate_s": generate_s,
        "media_decode_s": decode_s,
        "x_realtime_gpu_only": media_s / gpu_s,
        "x_realtime_serial": media_s / (gpu_s + decode_s),
        "x_realtime_overlapped": media_s / max(gpu_s, decode_s),
    }


def _print(f: dict[str, Any]) -> None:
    minutes = f["media_s"] / 60
    t = f["tokens"]
    print(f"{minutes:g} min 1280x720 H.264 + AAC, {f['fps']:g} fps, chunks of {f['chunk_minutes']:g} min, "
          f"model {f['model']}, {f['threads']} torch thread(s)")  # fmt: skip
    print(
        f"summarize: {f['wall_s']:.1f} s wall = {f['x_realtime']:.1f}x real time "
        f"(+ {f['model_load_s']:.1f} s model load); peak RSS {f['peak_rss_mb']:.0f} MB"
    )
    print(f"CPU time, all threads: {f['cpu_s']:.1f} s (media time / CPU time = {f['x_realtime_cpu']:.1f}x)")  # fmt: skip
    print(f"tokens: {t['context']:,} through the session ({t['context'] / minutes:,.0f}/min), "
          f"budget {t['budget']:,}, {t['evicted']:,} evicted, {t['notes']:,} notes + {t['summary']:,} summary generated; "
          f"{f['chunks']} chunks, summary level {f['summary_levels']}")  # fmt: skip
    print(f"{'phase':<24}{'seconds':>9}{'of wall':>9}{'s per media min':>17}")
    for name, sec in f["phases_s"].items():
        print(f"{name:<24}{sec:>9.1f}{sec / f['wall_s']:>9.0%}{sec / minutes:>17.3f}")
    h = f["h100_estimate"]
    print("H100 estimate, Gemma 4 12B bf16 (prefill 2 x 12e9 FLOP/token at 700 TFLOP/s; decode reads 24 GB weights "
          "+ 1 GiB KV per token at 3.35 TB/s):")  # fmt: skip
    print(f"  {h['prefill_tokens_per_min']:,.0f} prefill tok/min x {h['prefill_s_per_token'] * 1e6:.0f} us + "
          f"{h['generated_tokens_per_min']:,.0f} generated tok/min x {h['decode_s_per_token'] * 1e3:.1f} ms "
          f"= {h['gpu_s'] / minutes:.2f} GPU s per media minute")  # fmt: skip
    print(f"  x real time: {h['x_realtime_gpu_only']:.0f}x GPU alone; {h['x_realtime_serial']:.0f}x with this "
          f"CPU's media decoding in series; {h['x_realtime_overlapped']:.0f}x with decoding overlapped")  # fmt: skip


if (
    __name__ == "__main__"
):  # python -m streamer.benchmarks.summarize (same flags as `streamer bench summarize`)
    _parser = argparse.ArgumentParser(prog="streamer bench summarize", description=__doc__.splitlines()[0])
    add_arguments(_parser)
    sys.exit(run(_parser.parse_args()))
