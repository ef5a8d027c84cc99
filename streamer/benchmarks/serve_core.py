"""``streamer bench serve-core``: what a server's event loop and its answering clients feel.

One asyncio loop drives two sessions of one engine, as a server would: session *I* ingests
``--seconds`` of 640×360 video at 1 fps with its audio, pushed as fast as the loop can (a
client catching up), while session *D* streams a long answer. Measured in the same run:

* **heartbeat lateness** of a 10 ms ``asyncio.sleep`` loop (max and p99): how long the event
  loop was blocked;
* **inter-token gaps** of the answering session (max and p99): how long an answer stalls while
  another session ingests;
* **a fast pusher's memory**: one session pushed frames + audio with no pacing; peak RSS growth,
  the most bytes queued, and the frames dropped by the bound.

Two configurations run side by side:

* ``core`` — streamer's engine core: pushes only queue (the step thread preprocesses), and
  prefill while anyone decodes is capped at ``decode_prefill_tokens`` per step;
* ``naive`` — the seam it replaced, emulated: every frame is resized and patchified on the event
  loop before it is pushed (as ``push_frame`` did on the caller's thread), and prefill chunks
  while decoding are a full ``prefill_chunk_tokens``.

A benchmark: nothing asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from streamer import jsonio
from streamer.benchmarks.memory import rss_mb
from streamer.cli.args import SEED, THREADS, number

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="checkpoint directory (default: the bundled model)")
    parser.add_argument(
        "--seconds", type=number(int, 5, 3600), default=60, help="media seconds ingested (default: 60)"
    )
    parser.add_argument(
        "--answer-tokens",
        type=number(int, 8, 4096),
        default=400,
        help="tokens of the streamed answer (default: 400)",
    )
    parser.add_argument("--push-frames", type=number(int, 10, 100_000), default=600,
                        help="frames the fast pusher sends (default: 600)")  # fmt: skip
    parser.add_argument("--threads", type=THREADS, default=None, help="torch CPU threads")
    parser.add_argument("--seed", type=SEED, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _heartbeat(lateness: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(0.010)
        lateness.append(loop.time() - t - 0.010)


async def _scenario(engine: Any, args: argparse.Namespace, naive: bool) -> dict[str, Any]:
    import numpy as np

    from streamer.engine import SamplingParams, SessionConfig
    from streamer.engine.aio import AsyncEngine
    from streamer.model.preprocess import image_to_patches

    aengine = AsyncEngine(engine)
    rng = np.random.default_rng(args.seed)
    frames = [rng.integers(0, 256, (360, 640, 3), dtype=np.uint8) for _ in range(4)]
    vision = engine.loaded.config.vision
    lateness: list[float] = []
    stop = asyncio.Event()
    beat = asyncio.create_task(_heartbeat(lateness, stop))

    talker = await aengine.open_session(SessionConfig(system_prompt="You describe things at length."))
    await talker.wait_idle(60)
    ingest = await aengine.open_session(SessionConfig(max_context_tokens=None))
    await ingest.wait_idle(60)
    answer = talker.ask("Describe everything.", SamplingParams(max_new_tokens=args.answer_tokens))
    arrivals: list[float] = []  # one per event: a reader that lags gets several tokens in one event
    tokens = 0
    loop = asyncio.get_running_loop()

    async def read() -> None:
        nonlocal tokens
        async for event in answer:
            if event.token_ids:
                arrivals.append(loop.time())
                tokens += len(event.token_ids)

    reader = asyncio.create_task(read())
    while not arrivals:  # the answer is streaming before the ingest starts
        await asyncio.sleep(0.001)
    lateness.clear()
    t0 = loop.time()
    for second in range(args.seconds):
        image = frames[second % len(frames)]
        if naive:  # the old seam: preprocessing on the caller's thread (here: the event loop)
            image_to_patches(image, vision, 70, video=True)
        await ingest.push_frame(image, float(second))
        await ingest.push_audio((rng.standard_normal(16_000) * 0.1).astype(np.float32), float(second))
        await asyncio.sleep(0)  # a server yields between messages
    pushed_s = loop.time() - t0
    await reader
    ingest_done = await ingest.wait_idle(600)
    stop.set()
    await beat
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    ingest_stats = ingest.stats()
    await talker.close()
    await ingest.close()
    return {
        "heartbeat_ms": {
            "max": max(lateness, default=float("nan")) * 1e3,
            "p99": _pct(lateness, 0.99) * 1e3,
            "beats": len(lateness),
        },
        "token_gap_ms": {
            "max": max(gaps, default=float("nan")) * 1e3,
            "p99": _pct(gaps, 0.99) * 1e3,
            "tokens": tokens,
        },
        "push_s": pushed_s,
        "ingested_frames": ingest_stats.frames,
        "dropped_frames": ingest_stats.dropped_frames,
        "ingest_finished": ingest_done,
    }


def _fast_pusher(engine: Any, frames: int, seed: int) -> dict[str, Any]:
    import numpy as np

    from streamer.engine import SessionConfig
    from streamer.model.preprocess import image_to_patches

    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
    patches = image_to_patches(image, engine.loaded.config.vision, 70, video=True)
    patch_bytes = patches.pixels.nbytes + patches.positions.nbytes  # what the old queue held per frame
    session = engine.open_session(SessionConfig())
    session.wait_idle(60)
    rss0, peak, queued = rss_mb(), 0.0, 0
    audio = (rng.standard_normal(16_000) * 0.1).astype(np.float32)
    t0 = time.perf_counter()
    for i in range(frames):
        session.push_frame(image.copy(), float(i))  # a fresh array per frame, as a decoder makes
        session.push_audio(audio, float(i))
        if i % 10 == 0:
            peak, queued = max(peak, rss_mb()), max(queued, session.stats().queued_bytes)
    push_s = time.perf_counter() - t0
    session.wait_idle(600)
    stats = session.stats()
    session.close()
    return {
        "frames_pushed": frames,
        "push_s": push_s,
        "rss_growth_mb": max(peak, rss_mb()) - rss0,
        "max_queued_mb": queued / 2**20,
        "limit_mb": SessionConfig().max_pending_bytes / 2**20,
        "frames_dropped": stats.dropped_frames,
        "frames_prefilled": stats.frames,
        "naive_patch_mb_per_frame": patch_bytes / 2**20,
    }


def run(args: argparse.Namespace) -> int:
    import torch

    from streamer.cli.common import default_model_dir
    from streamer.engine import Engine, EngineConfig
    from streamer.engine.scheduler import SchedulerConfig
    from streamer.model.tokenizer import load_tokenizer
    from streamer.model.weights import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = args.model or default_model_dir()
    loaded, tokenizer = load_model(model_dir), load_tokenizer(model_dir)
    results: dict[str, Any] = {
        "model": str(model_dir),
        "threads": torch.get_num_threads(),
        "seconds": args.seconds,
    }
    for name, naive in (("naive", True), ("core", False)):
        chunk = SchedulerConfig().prefill_chunk_tokens
        scheduler = SchedulerConfig(decode_prefill_tokens=chunk) if naive else SchedulerConfig()
        engine = Engine(loaded, tokenizer, EngineConfig(scheduler=scheduler))
        engine.stop_ids = frozenset()  # decode the full length: steady figures on any weights
        engine.start()
        try:
            results[name] = asyncio.run(_scenario(engine, args, naive))
            if not naive:
                results["fast_pusher"] = _fast_pusher(engine, args.push_frames, args.seed)
        finally:
            engine.stop()
    n, c = results["naive"], results["core"]
    results["ratios"] = {
        "heartbeat_p99": n["heartbeat_ms"]["p99"] / max(c["heartbeat_ms"]["p99"], 1e-6),
        "heartbeat_max": n["heartbeat_ms"]["max"] / max(c["heartbeat_ms"]["max"], 1e-6),
        "token_gap_max": n["token_gap_ms"]["max"] / max(c["token_gap_ms"]["max"], 1e-6),
    }
    if args.json:
        print(jsonio.dumps(results))
        return 0
    print(
        f"model {results['model']}  threads {results['threads']}  ingest {args.seconds} s of 640x360 1 fps + audio"
    )
    print(
        f"{'':8} {'heartbeat p99':>14} {'max':>8} {'token gap p99':>14} {'max':>8} {'frames':>7} {'dropped':>8}"
    )
    for name in ("naive", "core"):
        r = results[name]
        print(
            f"{name:8} {r['heartbeat_ms']['p99']:11.1f} ms {r['heartbeat_ms']['max']:5.0f} ms "
            f"{r['token_gap_ms']['p99']:11.1f} ms {r['token_gap_ms']['max']:5.0f} ms "
            f"{r['ingested_frames']:7d} {r['dropped_frames']:8d}"
        )
    ratios = results["ratios"]
    print(
        f"naive/core: heartbeat p99 {ratios['heartbeat_p99']:.1f}x, max {ratios['heartbeat_max']:.1f}x; "
        f"longest token gap {ratios['token_gap_max']:.1f}x"
    )
    f = results["fast_pusher"]
    print(
        f"fast pusher: {f['frames_pushed']} frames in {f['push_s']:.2f} s, RSS +{f['rss_growth_mb']:.0f} MB, "
        f"queue peak {f['max_queued_mb']:.0f} MB (limit {f['limit_mb']:.0f} MB), "
        f"{f['frames_dropped']} dropped, {f['frames_prefilled']} prefilled "
        f"(float32 patches would hold {f['naive_patch_mb_per_frame']:.2f} MB per queued frame)"
    )
    return 0
