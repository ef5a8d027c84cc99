"""``streamer bench serve``: the live endpoints' own cost, and a bounded load test, on loopback.

Parts (``--parts``, comma-separated; each is a function in :data:`PARTS`, so an endpoint can add
its own, e.g. gRPC ``Ask`` round trips):

* ``ingest`` — per-frame ingest overhead over WebSocket. The same N JPEG frames (640×360) are
  taken in two ways in one run: through ``/v1/live`` of an in-process server (client encode of
  the header, socket, JSON-free binary framing, the protocol core, decode, push) and directly
  (decode + ``push_frame`` on the same engine, no socket). Overhead = the difference per frame.
  The end of a burst is observed by a barrier: a message the server refuses at once
  (a repeated ``seq``), which it can only answer after every message before it.
* ``load`` — ``--sessions`` WebSocket sessions against a ``streamer serve`` subprocess, each
  streaming ``--fps`` JPEG frames + 100 ms PCM chunks in real time for ``--seconds`` and asking
  a short question every ``--ask-every-s``; reports answer latency and TTFT p50/p99, errors,
  dropped frames, and the server's RSS over time (growth after the first third = warm-up).

A benchmark: nothing asserted (``tests/serve/test_load.py`` asserts on a shorter load run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from streamer import jsonio
from streamer.cli.args import THREADS, number

__all__ = ["PARTS", "LoadConfig", "LoadResult", "add_arguments", "run", "run_load", "start_server_process"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="checkpoint directory (default: the bundled model)")
    parser.add_argument("--parts", default="ingest,load", help=f"comma-separated parts: {', '.join(PARTS)}")
    parser.add_argument(
        "--frames", type=number(int, 10, 100_000), default=300, help="ingest: frames (default 300)"
    )
    parser.add_argument(
        "--sessions", type=number(int, 1, 1000), default=20, help="load: sessions (default 20)"
    )
    parser.add_argument(
        "--seconds", type=number(float, 1.0, 86_400.0), default=90.0, help="load: seconds (default 90)"
    )
    parser.add_argument(
        "--fps", type=number(float, 0.1, 30.0), default=1.0, help="load: frames/s (default 1)"
    )
    parser.add_argument(
        "--ask-every-s", type=number(float, 0.5, 3600.0), default=10.0, help="load: seconds between questions"
    )
    parser.add_argument(
        "--answer-tokens", type=number(int, 1, 1024), default=16, help="load: tokens per answer (default 16)"
    )
    parser.add_argument("--threads", type=THREADS, default=None, help="torch CPU threads")
    parser.add_argument("--fake", action="store_true", help="the scripted fake engine instead of a model")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


# ---- helpers -----------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def _rss_mb(pid: int | None = None) -> float:
    with open(f"/proc/{pid or 'self'}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _frames(n: int, width: int, height: int) -> list[bytes]:
    """``n`` distinct JPEG pictures (a moving gradient), encoded once up front."""
    import numpy as np

    from streamer.media.image import encode_jpeg

    y, x = np.mgrid[0:height, 0:width]
    out = []
    for i in range(min(n, 30)):
        rgb = np.stack([(x + 7 * i) % 256, (y + 3 * i) % 256, (x + y + 11 * i) % 256], axis=-1)
        out.append(encode_jpeg(rgb.astype(np.uint8)))
    return [out[i % len(out)] for i in range(n)]


def _pcm(seconds: float, rate: int = 16_000) -> bytes:
    import numpy as np

    t = np.arange(round(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 440.0 * t) * 3000).astype("<i2").tobytes()


# ---- ingest ------------------------------------------------------------------------------------


def _part_ingest(args: argparse.Namespace, engine: Any) -> dict[str, Any]:
    """Median of ``_ROUNDS`` interleaved rounds each way, after one warm-up round each."""
    import statistics
    import threading

    from streamer.engine.fake import FakeEngine
    from streamer.engine.runtime import EngineConfig
    from streamer.serve.limits import ServeLimits
    from streamer.serve.options import ServeOptions
    from streamer.serve.server import serve

    # The fake engine: only the ingest path is measured, not a model's prefill competing for the CPU.
    fake = FakeEngine(config=EngineConfig(max_sessions=64))
    fake.start()
    frames = _frames(args.frames, 640, 360)
    limits = ServeLimits(max_fps=30.0, max_pending_bytes=1 << 30, max_pending_tokens=1 << 24)
    box: dict[str, Any] = {}
    ready = threading.Event()
    loop = asyncio.new_event_loop()

    async def server() -> None:
        box["stop"] = asyncio.Event()

        def on_ready(listening: Any) -> None:
            box["port"] = listening.http_port
            ready.set()

        opts = ServeOptions(http_port=0, grpc_port=None, limits=limits, log_level="error")
        await serve(fake, opts, on_ready=on_ready, stop=box["stop"], stop_engine=False)

    thread = threading.Thread(target=lambda: loop.run_until_complete(server()), daemon=True)
    thread.start()
    direct: list[float] = []
    over_ws: list[float] = []
    try:
        if not ready.wait(30):
            raise RuntimeError("the benchmark server did not start")
        url = f"ws://127.0.0.1:{box['port']}/v1/live"
        for round_ in range(_ROUNDS + 1):
            d = asyncio.run(_ingest_direct(fake, frames, limits)) / len(frames)
            w = asyncio.run(_ingest_client(url, frames)) / len(frames)
            if round_:  # the first round warms up codecs and caches
                direct.append(d)
                over_ws.append(w)
    finally:
        if "stop" in box:
            loop.call_soon_threadsafe(box["stop"].set)
        thread.join(30)
        loop.close()
        fake.stop()
    d, w = statistics.median(direct), statistics.median(over_ws)
    return {
        "frames": len(frames),
        "rounds": _ROUNDS,
        "jpeg_bytes": sum(map(len, frames)) // len(frames),
        "direct_ms_per_frame": d * 1e3,
        "websocket_ms_per_frame": w * 1e3,
        "overhead_ms_per_frame": (w - d) * 1e3,
    }


_ROUNDS = 3


async def _ingest_direct(engine: Any, frames: list[bytes], limits: Any) -> float:
    """Decode + push the frames on a session of ``engine``, no socket: seconds for all."""
    from streamer.engine.aio import AsyncEngine
    from streamer.serve.media import LiveMedia
    from streamer.serve.messages import Frame

    session = await AsyncEngine(engine).open_session()
    media = LiveMedia(limits, 30.0)
    start = time.perf_counter()
    for i, data in enumerate(frames):
        frame = await media.frame(Frame(data, "jpeg", t_s=i / 30, seq=i))
        assert frame is not None
        await session.push_frame(frame.image, frame.t_s, seq=i)
    elapsed = time.perf_counter() - start
    await session.close()
    return elapsed


async def _ingest_client(url: str, frames: list[bytes]) -> float:
    from websockets.asyncio.client import connect

    from streamer.serve.messages import Frame
    from streamer.serve.ws import encode_media

    async with connect(url, max_size=None) as ws:
        await ws.send(jsonio.dumps({"type": "setup", "seq": 0, "fps": 30.0}))
        assert jsonio.loads(await ws.recv())["type"] == "ready"
        n = len(frames)
        start = time.perf_counter()
        for i, data in enumerate(frames):
            await ws.send(encode_media(Frame(data, "jpeg", None, None, i / 30, i + 1)))
        await ws.send(jsonio.dumps({"type": "cancel", "seq": n}))  # refused at once: the barrier
        while True:
            message = jsonio.loads(await ws.recv())
            if message["type"] == "error" and message["code"] == "bad_seq":
                return time.perf_counter() - start
            if message["type"] == "error":
                raise RuntimeError(f"ingest over WebSocket failed: {message}")


# ---- load --------------------------------------------------------------------------------------


@dataclass
class LoadConfig:
    sessions: int = 20  # concurrent WebSocket sessions
    seconds: float = 90.0  # seconds each session streams
    fps: float = 1.0  # JPEG frames per second per session
    ask_every_s: float = 10.0  # seconds between a session's questions
    answer_tokens: int = 16  # max_new_tokens of each answer
    frame_size: tuple[int, int] = (320, 240)  # pixels (width, height)
    rss_every_s: float = 2.0  # seconds between RSS samples of the server
    answer_wait_s: float = 60.0  # seconds a session waits for its last answers after streaming


@dataclass
class LoadResult:
    sessions: int
    seconds: float
    answers: int  # answers finished
    answer_latency_p50_s: float | None  # client-side: ask sent → answer_done received
    answer_latency_p99_s: float | None
    ttft_p50_s: float | None  # server-side: question queued → first token
    ttft_p99_s: float | None
    errors: list[str]  # every error message received, "code: message"
    frames_sent: int
    frames_in_context: int
    dropped_frames: int
    audio_s_sent: float
    audio_s_in_context: float
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MiB) of the server
    rss_growth_after_warmup_pct: float | None = None  # last sample vs the one at a third of the run
    server_ms_per_frame: float | None = None  # the server's own time per frame message (/metrics)
    server_ms_per_audio: float | None = None  # ... per audio message


async def run_load(url: str, cfg: LoadConfig, rss: Callable[[], float] | None = None) -> LoadResult:
    """Drive ``cfg.sessions`` live sessions against ``url`` (``ws://…/v1/live``) in real time."""
    frames = _frames(8, *cfg.frame_size)
    chunk = _pcm(0.1)
    latencies: list[float] = []
    ttfts: list[float] = []
    errors: list[str] = []
    finals: list[dict[str, Any]] = []
    sent = {"frames": 0, "audio_s": 0.0}
    samples: list[tuple[float, float]] = []
    t0 = time.monotonic()

    async def sample_rss() -> None:
        while rss is not None:
            samples.append((round(time.monotonic() - t0, 1), round(rss(), 1)))
            await asyncio.sleep(cfg.rss_every_s)

    async def one(index: int) -> None:
        from websockets.asyncio.client import connect

        from streamer.serve.messages import Audio, Frame
        from streamer.serve.ws import encode_media

        async with connect(url, max_size=None, open_timeout=30) as ws:
            setup = {
                "type": "setup",
                "seq": 0,
                "fps": cfg.fps,
                "sampling": {"max_new_tokens": cfg.answer_tokens},
            }
            await ws.send(jsonio.dumps(setup))
            ready = jsonio.loads(await ws.recv())
            if ready["type"] != "ready":
                errors.append(f"{ready.get('code')}: {ready.get('message')}")
                return
            asked: dict[str, float] = {}
            last_stats: dict[str, Any] = {}

            async def reader() -> None:
                async for raw in ws:
                    m = jsonio.loads(raw)
                    if m["type"] == "answer_done":
                        latencies.append(time.monotonic() - asked.pop(m["request_id"], time.monotonic()))
                        if m["ttft_s"] is not None:
                            ttfts.append(m["ttft_s"])
                        if m["finish_reason"] == "error":
                            errors.append(f"{m['error_code']}: {m['error_message']}")
                    elif m["type"] == "error":
                        errors.append(f"{m['code']}: {m['message']}")
                    elif m["type"] == "stats":
                        last_stats.update(m)

            read = asyncio.create_task(reader())
            seq, start = 1, time.monotonic()
            offset = index / cfg.sessions  # spread the sessions' frames and questions over a period
            next_frame, next_audio = start + offset / cfg.fps, start
            next_ask = start + cfg.ask_every_s * (0.5 + offset)
            n_frame = n_audio = n_ask = 0
            while (now := time.monotonic()) < start + cfg.seconds:
                if now >= next_audio:
                    await ws.send(encode_media(Audio(chunk, "s16le", 16_000, 1, n_audio * 0.1, seq)))
                    n_audio, seq, next_audio = n_audio + 1, seq + 1, next_audio + 0.1
                    sent["audio_s"] += 0.1
                if now >= next_frame:
                    t_s = next_frame - start
                    await ws.send(
                        encode_media(Frame(frames[n_frame % len(frames)], "jpeg", None, None, t_s, seq))
                    )
                    n_frame, seq, next_frame = n_frame + 1, seq + 1, next_frame + 1 / cfg.fps
                    sent["frames"] += 1
                if now >= next_ask:
                    rid = f"s{index}-q{n_ask}"
                    asked[rid] = time.monotonic()
                    await ws.send(
                        jsonio.dumps(
                            {"type": "ask", "seq": seq, "question": "What changed?", "request_id": rid}
                        )
                    )
                    n_ask, seq, next_ask = n_ask + 1, seq + 1, next_ask + cfg.ask_every_s
                await asyncio.sleep(max(0.0, min(next_audio, next_frame, next_ask) - time.monotonic()))
            deadline = time.monotonic() + cfg.answer_wait_s
            while asked and time.monotonic() < deadline:  # let the last answers arrive
                await asyncio.sleep(0.05)
            await ws.send(jsonio.dumps({"type": "close", "seq": seq}))
            await asyncio.wait([read], timeout=30)
            if asked:
                errors.append(f"{len(asked)} answer(s) never finished in session {index}")
            finals.append(dict(last_stats))

    sampler = asyncio.create_task(sample_rss())
    await asyncio.gather(*(one(i) for i in range(cfg.sessions)))
    sampler.cancel()
    ingest = await asyncio.to_thread(_server_ingest_ms, url)
    growth = None
    if len(samples) >= 3:
        base = samples[len(samples) // 3][1]
        growth = round(100 * (samples[-1][1] - base) / base, 1)
    return LoadResult(
        sessions=cfg.sessions,
        seconds=cfg.seconds,
        answers=len(latencies),
        answer_latency_p50_s=_percentile(latencies, 50),
        answer_latency_p99_s=_percentile(latencies, 99),
        ttft_p50_s=_percentile(ttfts, 50),
        ttft_p99_s=_percentile(ttfts, 99),
        errors=errors,
        frames_sent=sent["frames"],
        frames_in_context=sum(s.get("frames", 0) for s in finals),
        dropped_frames=sum(s.get("dropped_frames", 0) for s in finals),
        audio_s_sent=round(sent["audio_s"], 1),
        audio_s_in_context=round(sum(s.get("audio_s", 0.0) for s in finals), 1),
        rss_mb=samples,
        rss_growth_after_warmup_pct=growth,
        server_ms_per_frame=ingest.get("frame"),
        server_ms_per_audio=ingest.get("audio"),
    )


def _server_ingest_ms(ws_url: str) -> dict[str, float]:
    """Mean server time per frame / audio message, from ``streamer_ingest_seconds`` on /metrics."""
    import re
    import urllib.request

    url = (
        ws_url.replace("ws://", "http://").replace("wss://", "https://").rsplit("/v1/live", 1)[0] + "/metrics"
    )
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out = {}
    for kind in ("frame", "audio"):
        total = re.search(rf'^streamer_ingest_seconds_sum{{kind="{kind}"}} (\S+)$', text, re.M)
        count = re.search(rf'^streamer_ingest_seconds_count{{kind="{kind}"}} (\S+)$', text, re.M)
        if total and count and float(count.group(1)):
            out[kind] = round(1e3 * float(total.group(1)) / float(count.group(1)), 3)
    return out


def start_server_process(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], int]:
    """``streamer serve --http-port 0 --no-grpc ARGS`` as a subprocess; returns it and its HTTP port."""
    cmd = [
        sys.executable,
        "-m",
        "streamer",
        "serve",
        "--http-port",
        "0",
        "--no-grpc",
        "--log-level",
        "error",
        *args,
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})}
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "listening:" in line:
            port = int(line.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
            return proc, port
    proc.wait(10)
    raise RuntimeError(f"streamer serve exited with {proc.returncode}")


def _part_load(args: argparse.Namespace, engine: Any) -> dict[str, Any]:
    extra = ["--fake"] if args.fake else []
    if args.model:
        extra += ["--model", args.model]
    if args.threads:
        extra += ["--threads", str(args.threads)]
    extra += ["--max-sessions", str(max(32, args.sessions)), "--stats-interval-s", "1"]
    proc, port = start_server_process(*extra)
    try:
        cfg = LoadConfig(args.sessions, args.seconds, args.fps, args.ask_every_s, args.answer_tokens)
        result = asyncio.run(run_load(f"ws://127.0.0.1:{port}/v1/live", cfg, rss=lambda: _rss_mb(proc.pid)))
    finally:
        proc.terminate()
        proc.wait(60)
        if proc.stdout is not None:
            proc.stdout.close()
    out = asdict(result)
    out["errors"] = result.errors[:20]
    out["error_count"] = len(result.errors)
    return out


PARTS: dict[str, Callable[[argparse.Namespace, Any], dict[str, Any]]] = {
    "ingest": _part_ingest,
    "load": _part_load,
}


def run(args: argparse.Namespace) -> int:
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        from streamer.errors import InputError

        raise InputError(
            f"unknown part {unknown[0] if unknown else '(none)'}; choose from {', '.join(PARTS)}"
        )
    engine = None  # the parts start what they measure; a future in-process part may share one here
    report: dict[str, Any] = {"engine": "fake" if args.fake else (args.model or "bundled")}
    try:
        for part in parts:
            report[part] = PARTS[part](args, engine)
            if not args.json:
                _print(part, report[part])
    finally:
        if engine is not None:
            engine.stop()
    if args.json:
        print(jsonio.dumps(report))
    return 0


def _print(part: str, figures: dict[str, Any]) -> None:
    print(f"== {part}")
    for key, value in figures.items():
        if key == "rss_mb":
            value = " ".join(f"{t:g}s:{mb:.0f}" for t, mb in value)
        elif isinstance(value, float):
            value = f"{value:.4g}"
        print(f"  {key:32s} {value}")
    sys.stdout.flush()
