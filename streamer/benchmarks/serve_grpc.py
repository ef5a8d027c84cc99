"""The gRPC parts of ``streamer bench serve`` (``--parts grpc-ask,grpc-ingest``), on loopback.

* ``grpc-ask`` — ``Ask`` round-trip overhead over engine time. The same requests are answered
  two ways in one run, in interleaved rounds: over gRPC (a client stub → the ``grpc.aio``
  server on 127.0.0.1, both in this process and event loop: grpc.aio serves one loop per
  process, so client and server work add up on one core, a pessimistic setting) and directly (the server's own decode + fresh session + answer, no
  socket, :func:`streamer.serve.grpc_ask.decode_ask` + :func:`~streamer.serve.grpc_ask.run_ask`).
  Overhead = p50(round trip) − p50(direct). Also ``transport`` = round trip − the server's own
  time for the call (``AskResponse.server_s``) per call. Two request shapes: a prompt with
  ``choices`` alone, and the robot controller's (one 640×360 JPEG + ``choices``; no deadline
  here, so slow calls are measured rather than cut off). Engines: the scripted fake engine (transport cost alone) and, unless ``--fake``,
  the model (default: the bundled one).
* ``grpc-ingest`` — per-frame ingest overhead over a gRPC ``Live`` stream, measured as the
  WebSocket part measures it: N JPEG frames (640×360) through the stream vs decode + push on
  a session directly; the end of a burst is a message the server refuses at once (a repeated
  ``seq``), which it can only answer after every frame before it. Fake engine.

A benchmark: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = ["PARTS", "add_arguments", "ask_at_rate"]

_ROUNDS = 3  # interleaved rounds each way (after one warm-up round)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from streamer.cli.args import number

    parser.add_argument(
        "--asks", type=number(int, 10, 100_000), default=300, help="grpc-ask: calls per shape (default 300)"
    )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def _jpegs(n: int, width: int = 640, height: int = 360) -> list[bytes]:
    import numpy as np

    from streamer.media.image import encode_jpeg

    y, x = np.mgrid[0:height, 0:width]
    out = []
    for i in range(min(n, 30)):
        rgb = np.stack([(x + 5 * i) % 256, (y + 9 * i) % 256, (x + y + 13 * i) % 256], axis=-1)
        out.append(encode_jpeg(rgb.astype(np.uint8)))
    return [out[i % len(out)] for i in range(n)]


# ---- grpc-ask -----------------------------------------------------------------------------------


def _requests(shape: str, n: int) -> list[Any]:
    from streamer.serve.proto.streamer.v1 import streamer_pb2 as pb

    images = _jpegs(n) if shape == "jpeg" else [b""] * n
    out = []
    for data in images:
        req = pb.AskRequest(prompt="Is the gripper holding the cup?", choices=["yes", "no"])
        if data:
            req.images.add(data=data, format=pb.IMAGE_FORMAT_JPEG, t_s=0.0)
        out.append(req)
    return out


async def _over_grpc(stub: Any, requests: list[Any]) -> tuple[list[float], list[float]]:
    """(round trips, round trip − server time) in seconds, one call at a time."""
    rtts, transport = [], []
    for req in requests:
        start = time.perf_counter()
        reply = await stub.Ask(req, timeout=60)
        rtt = time.perf_counter() - start
        rtts.append(rtt)
        transport.append(rtt - reply.server_s)
    return rtts, transport


async def _direct(engine: Any, requests: list[Any]) -> list[float]:
    """The server's work per call without gRPC: decode (in a worker thread, as served) + answer."""
    from streamer.engine.aio import AsyncEngine
    from streamer.serve.grpc_ask import decode_ask, run_ask
    from streamer.serve.limits import ServeLimits

    aengine, limits, out = AsyncEngine(engine), ServeLimits(), []
    for req in requests:
        start = time.perf_counter()
        data = await asyncio.to_thread(decode_ask, req, limits, 16)
        await run_ask(aengine, data, None)
        out.append(time.perf_counter() - start)
    return out


def _model_engine(args: argparse.Namespace) -> Any:
    import torch

    from streamer.cli.common import default_model_dir
    from streamer.engine.engine import Engine
    from streamer.model.tokenizer import load_tokenizer
    from streamer.model.weights import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = args.model or default_model_dir()
    engine = Engine(load_model(model_dir, dtype="float32"), load_tokenizer(model_dir))
    engine.start()
    return engine


def _ask_figures(engine: Any, n: int) -> dict[str, Any]:
    """Both ways in one event loop (grpc.aio binds to one loop per process)."""
    from streamer.serve.grpc_testing import grpc_test_server

    async def measure() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with grpc_test_server(engine) as t:
            for shape in ("prompt", "jpeg"):
                requests = _requests(shape, n)
                per = max(1, n // _ROUNDS)
                rtt: list[float] = []
                transport: list[float] = []
                direct: list[float] = []
                await _over_grpc(t.stub, requests[: min(20, n)])  # warm-up both ways
                await _direct(engine, requests[: min(20, n)])
                for r in range(_ROUNDS):
                    chunk = requests[r * per : (r + 1) * per]
                    a, b = await _over_grpc(t.stub, chunk)
                    rtt += a
                    transport += b
                    direct += await _direct(engine, chunk)
                out[shape] = {
                    "calls": len(rtt),
                    "grpc_p50_ms": _pct(rtt, 50) * 1e3,
                    "grpc_p99_ms": _pct(rtt, 99) * 1e3,
                    "direct_p50_ms": _pct(direct, 50) * 1e3,
                    "direct_p99_ms": _pct(direct, 99) * 1e3,
                    "overhead_p50_ms": (_pct(rtt, 50) - _pct(direct, 50)) * 1e3,
                    "transport_p50_ms": _pct(transport, 50) * 1e3,
                    "transport_p99_ms": _pct(transport, 99) * 1e3,
                }
        return out

    return asyncio.run(measure())


def part_ask(args: argparse.Namespace, engine: Any) -> dict[str, Any]:
    from streamer.engine.fake import FakeEngine

    figures: dict[str, Any] = {}
    fake = FakeEngine(answer="yes")
    fake.start()
    try:
        figures["fake"] = _ask_figures(fake, args.asks)
    finally:
        fake.stop()
    if not args.fake:
        model = _model_engine(args)
        try:
            figures["model"] = _ask_figures(model, args.asks)
        finally:
            model.stop()
    return _flatten(figures)


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# ---- grpc-ingest --------------------------------------------------------------------------------


async def _ingest_grpc(stub: Any, frames: list[bytes]) -> float:
    from streamer.serve.proto.streamer.v1 import streamer_pb2 as pb

    call = stub.Live()
    await call.write(pb.LiveRequest(seq=0, setup=pb.Setup(fps=30.0)))
    assert (await call.read()).WhichOneof("message") == "ready"
    n = len(frames)
    start = time.perf_counter()
    for i, data in enumerate(frames):
        frame = pb.Frame(data=data, format=pb.IMAGE_FORMAT_JPEG, t_s=i / 30)
        await call.write(pb.LiveRequest(seq=i + 1, frame=frame))
    await call.write(pb.LiveRequest(seq=n, cancel=pb.Cancel()))  # refused at once: the barrier
    while True:
        msg = await call.read()
        if msg.WhichOneof("message") == "error":
            if msg.error.code != "bad_seq":
                raise RuntimeError(f"ingest over gRPC failed: {msg.error}")
            elapsed = time.perf_counter() - start
            call.cancel()
            return elapsed


async def _ingest_direct(engine: Any, frames: list[bytes], limits: Any) -> float:
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


def part_ingest(args: argparse.Namespace, engine: Any) -> dict[str, Any]:
    from streamer.engine.fake import FakeEngine
    from streamer.engine.runtime import EngineConfig
    from streamer.serve.grpc_testing import grpc_test_server
    from streamer.serve.limits import ServeLimits

    fake = FakeEngine(config=EngineConfig(max_sessions=64))
    frames = _jpegs(args.frames)
    limits = ServeLimits(max_fps=30.0, max_pending_bytes=1 << 30, max_pending_tokens=1 << 24)
    direct: list[float] = []
    over_grpc: list[float] = []

    async def measure() -> None:
        async with grpc_test_server(fake, limits=limits) as t:
            for round_ in range(_ROUNDS + 1):
                d = await _ingest_direct(fake, frames, limits) / len(frames)
                g = await _ingest_grpc(t.stub, frames) / len(frames)
                if round_:  # the first round warms up codecs and caches
                    direct.append(d)
                    over_grpc.append(g)

    asyncio.run(measure())
    d, g = statistics.median(direct), statistics.median(over_grpc)
    return {
        "frames": len(frames),
        "rounds": _ROUNDS,
        "jpeg_bytes": sum(map(len, frames)) // len(frames),
        "direct_ms_per_frame": d * 1e3,
        "grpc_ms_per_frame": g * 1e3,
        "overhead_ms_per_frame": (g - d) * 1e3,
    }


# ---- for load tests -----------------------------------------------------------------------------


async def ask_at_rate(
    target: str,
    hz: float,
    seconds: float,
    deadline_s: float = 0.5,
    api_key: str | None = None,
    size: tuple[int, int] = (320, 240),
) -> dict[str, Any]:
    """Robot-controller load: an ``Ask`` (one JPEG, ``choices``) every ``1/hz`` s for ``seconds``.

    Ticks do not wait for each other (as a controller would not); each call has ``deadline_s``.
    Returns ``{"calls", "ok", "deadline_exceeded", "errors": [codes], "latency_p50_s", "latency_p99_s"}``
    (latencies of the answered calls). For ``streamer bench serve``'s load part, next to the
    WebSocket sessions (``target`` = the server's gRPC ``host:port``).
    """
    import grpc

    from streamer.serve.grpc_errors import error_from_rpc
    from streamer.serve.proto.streamer.v1 import streamer_pb2 as pb
    from streamer.serve.proto.streamer.v1 import streamer_pb2_grpc as pb_grpc

    frames = _jpegs(30, *size)
    metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
    latencies: list[float] = []
    codes: list[str] = []

    async def one(stub: Any, jpeg: bytes) -> None:
        req = pb.AskRequest(prompt="Is the gripper holding the cup?", choices=["yes", "no"])
        req.images.add(data=jpeg, format=pb.IMAGE_FORMAT_JPEG)
        start = time.perf_counter()
        try:
            await stub.Ask(req, timeout=deadline_s, metadata=metadata)
            latencies.append(time.perf_counter() - start)
        except grpc.aio.AioRpcError as exc:
            codes.append(str(getattr(error_from_rpc(exc), "code", "internal")))

    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.StreamerStub(channel)
        start = time.perf_counter()
        tasks = []
        for n in range(round(seconds * hz)):
            await asyncio.sleep(max(0.0, start + n / hz - time.perf_counter()))
            tasks.append(asyncio.ensure_future(one(stub, frames[n % len(frames)])))
        await asyncio.gather(*tasks)
    return {
        "calls": len(tasks),
        "ok": len(latencies),
        "deadline_exceeded": codes.count("deadline_exceeded"),
        "errors": sorted(set(codes) - {"deadline_exceeded"}),
        "latency_p50_s": _pct(latencies, 50) if latencies else None,
        "latency_p99_s": _pct(latencies, 99) if latencies else None,
    }


PARTS: dict[str, Callable[[argparse.Namespace, Any], dict[str, Any]]] = {
    "grpc-ask": part_ask,
    "grpc-ingest": part_ingest,
}
