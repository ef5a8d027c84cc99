"""``streamer bench ray-serve``: what the Ray Serve path costs over ``streamer serve``, and what it buys.

One run, one local Ray instance (``--cpus``, default 2), the same front-end code on both sides:

* **overhead** (scripted fake engine, so only the serving path is timed): ``streamer serve --fake``
  in a subprocess (uvicorn + grpc.aio in-process with the engine) against one Serve replica of the
  fake engine behind Serve's HTTP and gRPC proxies. Per message: a client message the protocol
  core answers at once (a text turn with an unknown role → an ``error`` event), round trip p50/p99.
  Per answer: question → first delta and question → ``answer_done`` (4 scripted words, 20 ms of
  fake model time each). WebSocket and gRPC ``Live``.
* **throughput** (the bundled model): ``--sessions`` concurrent WebSocket sessions asking
  questions back to back (``--tokens`` each) for ``--seconds``: answers/s, generated tokens/s and
  answer latency, for ``streamer serve`` (one engine), 1 replica and 2 replicas, every engine on
  one torch thread and one reserved CPU.

On a small machine every process shares the same cores (clients, proxies, Ray's own daemons and
the replicas), and the load average is printed with the figures: they say what the hops cost here, not what a GPU cluster does. A benchmark:
nothing asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from streamer import jsonio
from streamer.cli.args import number

__all__ = ["add_arguments", "run"]

_BAD_TEXT = {"type": "text", "text": "x", "role": "narrator"}  # refused at once: an error event


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="checkpoint directory (default: the bundled model)")
    parser.add_argument(
        "--cpus", type=number(int, 1, 1024), default=2, help="CPUs of the local Ray (default 2)"
    )
    parser.add_argument(
        "--round-trips",
        type=number(int, 10, 100_000),
        default=300,
        help="per-message round trips (default 300)",
    )
    parser.add_argument("--asks", type=number(int, 5, 10_000), default=40, help="answers timed (default 40)")
    parser.add_argument(
        "--sessions",
        type=number(int, 1, 256),
        default=8,
        help="concurrent sessions for throughput (default 8)",
    )
    parser.add_argument(
        "--tokens", type=number(int, 1, 1024), default=16, help="tokens per answer (default 16)"
    )
    parser.add_argument(
        "--seconds",
        type=number(float, 1.0, 3600.0),
        default=20.0,
        help="throughput window per setup (default 20)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


# ---- the servers ---------------------------------------------------------------------------------


_FAKE_SERVER = """
import asyncio
from streamer.engine.fake import FakeEngine
from streamer.serve.options import ServeOptions
from streamer.serve.server import serve
engine = FakeEngine(step_delay_s=0.0)
engine.start()
ready = lambda where: print("listening: " + where.describe(), flush=True)
asyncio.run(serve(engine, ServeOptions(http_port=0, grpc_port=0, log_level="warning"), on_ready=ready))
"""


@contextlib.contextmanager
def _local_server(*extra: str, fake: bool = False) -> Iterator[tuple[int, int]]:
    """``streamer serve`` in a subprocess on free ports: (http_port, grpc_port).

    ``fake``: the same server code on a fake engine with no simulated model time.
    """
    cmd = [sys.executable, "-m", "streamer", "serve", "--http-port", "0", "--grpc-port", "0", *extra]
    if fake:
        cmd = [sys.executable, "-c", _FAKE_SERVER]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        ports = re.findall(r":(\d+)", line.split("listening:", 1)[-1])
        if not ports:
            raise RuntimeError(f"streamer serve did not start: {line!r}")
        yield int(ports[0]), int(ports[-1])  # the same port twice with --no-grpc
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
        if proc.poll() is None:
            proc.kill()


@contextlib.contextmanager
def _ray_app(ports: tuple[int, int], **config: Any) -> Iterator[tuple[int, int]]:
    from ray import serve

    from streamer.serve.ray_app import build_app
    from streamer.serve.ray_config import APP_NAME, RayServeConfig

    serve.run(build_app(RayServeConfig(**config)), name=APP_NAME, route_prefix="/")
    try:
        yield ports
    finally:
        serve.delete(APP_NAME)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- the clients -----------------------------------------------------------------------------------


def _pcts(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p99_ms": None, "n": 0}
    v = sorted(values)
    pick = lambda q: v[min(len(v) - 1, int(q * len(v)))] * 1000  # noqa: E731
    return {"p50_ms": round(pick(0.5), 3), "p99_ms": round(pick(0.99), 3), "n": len(v)}


async def _ws_overhead(port: int, round_trips: int, asks: int) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    async with connect(f"ws://127.0.0.1:{port}/v1/live", max_size=None) as ws:
        await ws.send(jsonio.dumps({"type": "setup", "sampling": {"max_new_tokens": 8}}))
        assert jsonio.loads(await ws.recv())["type"] == "ready"

        async def until(kind: str) -> dict[str, Any]:
            while True:
                msg = jsonio.loads(await ws.recv())
                if msg["type"] == kind:
                    return msg

        rtt = []
        for i in range(round_trips + 20):
            t0 = time.perf_counter()
            await ws.send(jsonio.dumps(_BAD_TEXT))
            await until("error")
            if i >= 20:
                rtt.append(time.perf_counter() - t0)
        first, done = [], []
        for i in range(asks + 3):
            t0 = time.perf_counter()
            await ws.send(jsonio.dumps({"type": "ask", "question": "how are you"}))
            await until("answer_delta")
            t1 = time.perf_counter()
            await until("answer_done")
            if i >= 3:
                first.append(t1 - t0)
                done.append(time.perf_counter() - t0)
    return {"message_rtt": _pcts(rtt), "first_delta": _pcts(first), "answer_done": _pcts(done)}


async def _grpc_overhead(port: int, round_trips: int, asks: int) -> dict[str, Any]:
    import grpc

    from streamer.serve.proto.streamer.v1 import streamer_pb2 as pb
    from streamer.serve.proto.streamer.v1 import streamer_pb2_grpc as pb_grpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = pb_grpc.StreamerStub(channel).Live()
        await call.write(pb.LiveRequest(setup=pb.Setup(sampling=pb.SamplingParams(max_new_tokens=8))))

        async def until(kind: str) -> Any:
            while True:
                msg = await call.read()
                if msg is grpc.aio.EOF:
                    raise RuntimeError("the Live stream ended")
                if msg.WhichOneof("message") == kind:
                    return msg

        await until("ready")
        rtt = []
        for i in range(round_trips + 20):
            t0 = time.perf_counter()
            await call.write(pb.LiveRequest(text=pb.Text(text="x", role="narrator")))
            await until("error")
            if i >= 20:
                rtt.append(time.perf_counter() - t0)
        first, done = [], []
        for i in range(asks + 3):
            t0 = time.perf_counter()
            await call.write(pb.LiveRequest(ask=pb.Question(question="how are you")))
            await until("answer_delta")
            t1 = time.perf_counter()
            await until("answer_done")
            if i >= 3:
                first.append(t1 - t0)
                done.append(time.perf_counter() - t0)
        await call.done_writing()
        call.cancel()
    return {"message_rtt": _pcts(rtt), "first_delta": _pcts(first), "answer_done": _pcts(done)}


async def _throughput(port: int, sessions: int, tokens: int, seconds: float) -> dict[str, Any]:
    """Answers back to back on ``sessions`` sessions; the window opens once every session is warm."""
    from websockets.asyncio.client import connect

    latencies: list[float] = []
    generated = refused = warmed = 0
    window = {"end": 0.0}
    start = asyncio.Event()

    async def ask(ws: Any) -> dict[str, Any]:
        await ws.send(jsonio.dumps({"type": "ask", "question": "What is happening now?"}))
        while (msg := jsonio.loads(await ws.recv()))["type"] != "answer_done":
            pass
        return msg

    async def one() -> None:
        nonlocal generated, refused, warmed
        async with connect(f"ws://127.0.0.1:{port}/v1/live", max_size=None, open_timeout=60) as ws:
            await ws.send(jsonio.dumps({"type": "setup", "sampling": {"max_new_tokens": tokens}}))
            ok = jsonio.loads(await ws.recv())["type"] == "ready"
            if ok:
                for _ in range(2):  # first forwards and allocations happen before the window opens
                    await ask(ws)
            else:
                refused += 1
            warmed += 1
            await start.wait()
            while ok and time.perf_counter() < window["end"]:
                t0 = time.perf_counter()
                msg = await ask(ws)
                if time.perf_counter() <= window["end"]:
                    latencies.append(time.perf_counter() - t0)
                    generated += int(msg["tokens"])

    tasks = [asyncio.ensure_future(one()) for _ in range(sessions)]
    while warmed < sessions:
        await asyncio.sleep(0.01)
    window["end"] = time.perf_counter() + seconds
    start.set()
    await asyncio.gather(*tasks)
    return {
        "answers_per_s": round(len(latencies) / seconds, 2),
        "tokens_per_s": round(generated / seconds, 1),
        "answer_latency": _pcts(latencies),
        "refused_sessions": refused,
    }


# ---- the run ---------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    import ray
    from ray import serve

    from streamer.model.bundled import bundled_model_dir
    from streamer.serve.ray_deploy import GRPC_SERVICER

    model = args.model or str(bundled_model_dir())
    cpus = args.cpus
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    ports = (_free_port(), _free_port())
    out: dict[str, Any] = {
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "cpus": cpus,
        "model": os.path.basename(model.rstrip("/")),
        "overhead": {},
        "throughput": {},
    }
    try:
        serve.start(
            http_options={"host": "127.0.0.1", "port": ports[0]},
            grpc_options={"port": ports[1], "grpc_servicer_functions": [GRPC_SERVICER]},
        )
        rt, asks = args.round_trips, args.asks
        for name, server in (
            ("in_process", _local_server(fake=True)),
            ("ray_serve", _ray_app(ports, fake=True, fake_step_s=0.0, num_replicas=1, num_cpus=1)),
        ):
            with server as (http, grpc_port):
                out["overhead"][name] = {
                    "websocket": asyncio.run(_ws_overhead(http, rt, asks)),
                    "grpc": asyncio.run(_grpc_overhead(grpc_port, rt, asks)),
                }
        # one torch thread per engine everywhere: 2 threads per engine on 2 busy cores oversubscribe
        # (OpenMP spin-waits against the proxies and clients) and collapse
        setups = (
            ("in_process", _local_server("--model", model, "--threads", "1", "--no-grpc")),
            (
                "ray_1_replica",
                _ray_app(ports, model=model, num_replicas=1, num_cpus=1, sessions_per_replica=64),
            ),
            (
                "ray_2_replicas",
                _ray_app(ports, model=model, num_replicas=2, num_cpus=1, sessions_per_replica=64),
            ),
        )
        for name, server in setups:
            with server as (http, _):
                out["throughput"][name] = asyncio.run(
                    _throughput(http, args.sessions, args.tokens, args.seconds)
                )
    finally:
        serve.shutdown()
        ray.shutdown()
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    out["overhead"]["ray_minus_in_process_ms"] = _differences(out["overhead"])
    if args.json:
        print(jsonio.dumps(out, indent=1))
    else:
        _print(out, args)
    return 0


def _differences(overhead: dict[str, Any]) -> dict[str, Any]:
    diff: dict[str, Any] = {}
    for proto in ("websocket", "grpc"):
        diff[proto] = {}
        for figure in ("message_rtt", "first_delta", "answer_done"):
            a, b = overhead["in_process"][proto][figure], overhead["ray_serve"][proto][figure]
            diff[proto][figure] = {q: round(b[q] - a[q], 3) for q in ("p50_ms", "p99_ms")}
    return diff


def _print(out: dict[str, Any], args: argparse.Namespace) -> None:
    o = out["overhead"]
    print(
        f"Ray Serve vs streamer serve, {out['cpus']} CPUs, one local Ray instance; machine load average "
        f"{out['load_average_before'][0]} before, {out['load_average_after'][0]} after"
    )
    print(
        "\noverhead (fake engine)            in-process p50/p99 ms    Ray Serve p50/p99 ms    added p50/p99 ms"
    )
    for proto in ("websocket", "grpc"):
        for figure, label in (("message_rtt", "message round trip"), ("first_delta", "question → first delta"),
                              ("answer_done", "question → answer_done")):  # fmt: skip
            a, b, d = (
                o["in_process"][proto][figure],
                o["ray_serve"][proto][figure],
                o["ray_minus_in_process_ms"][proto][figure],
            )
            print(
                f"  {proto:9} {label:24} {a['p50_ms']:8.2f} / {a['p99_ms']:8.2f}     {b['p50_ms']:8.2f} / {b['p99_ms']:8.2f}"
                f"     {d['p50_ms']:+8.2f} / {d['p99_ms']:+8.2f}"
            )
    print(
        f"\nthroughput ({out['model']}, {args.sessions} WebSocket sessions, {args.tokens}-token answers back to back, "
        f"{args.seconds:g} s each)"
    )
    for name, t in out["throughput"].items():
        lat = t["answer_latency"]
        print(
            f"  {name:15} {t['answers_per_s']:7.2f} answers/s  {t['tokens_per_s']:8.1f} tok/s   "
            f"latency p50 {lat['p50_ms']} ms p99 {lat['p99_ms']} ms   refused {t['refused_sessions']}"
        )
