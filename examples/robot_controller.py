"""A robot controller over gRPC: a video file as its camera, one constrained question per tick.

Each tick (5-10 Hz) takes the camera's latest picture (JPEG), asks ``streamer.v1.Streamer/Ask``
a question whose answer must be one of ``--choices``, under a 500 ms deadline, and acts on the
answer (here: prints it). A late answer is worth nothing to a controller, so the call carries a
deadline and the server cancels the work instead of answering late; ticks never wait for each
other (a slow answer does not delay the next picture). At the end it prints latency percentiles.

    streamer serve &                                   # gRPC on 127.0.0.1:50051
    python examples/robot_controller.py camera.mp4 --hz 5 --seconds 20 \\
        --question "Is the gripper holding the cup?" --choices yes,no

    python examples/robot_controller.py camera.mp4 --spawn --server-threads 1   # its own `streamer serve`

Uses only the generated stub (streamer.serve.proto) and grpcio; see docs/protocol.md#grpc.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator

import grpc
import numpy as np

from streamer.errors import StreamerError
from streamer.media import SamplingPolicy, VideoFrame, open_media
from streamer.media.image import encode_jpeg
from streamer.serve.grpc_errors import error_from_rpc
from streamer.serve.proto.streamer.v1 import streamer_pb2 as pb
from streamer.serve.proto.streamer.v1 import streamer_pb2_grpc as pb_grpc


def check_camera(path: str) -> None:
    """Exit with one line unless ``path`` is a readable recording with a video stream."""
    try:
        with open_media(path, SamplingPolicy.fixed_rate(1.0)) as media:
            has_video = media.info.video is not None
    except StreamerError as exc:
        raise SystemExit(f"robot_controller: error: {exc}") from None
    if not has_video:
        raise SystemExit(f"robot_controller: error: {path}: no video stream to use as the camera")


def camera(path: str, hz: float) -> Iterator[VideoFrame]:
    """The video's pictures at ``hz`` (its own timestamps), decoded as they are needed."""
    with open_media(path, SamplingPolicy.fixed_rate(hz)) as media:
        for item in media.items():
            if isinstance(item, VideoFrame):
                yield item


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def tick(
    stub: pb_grpc.StreamerStub, jpeg: bytes, args: argparse.Namespace, metadata: tuple, results: list
) -> None:
    request = pb.AskRequest(
        prompt=args.question,
        choices=args.choices,
        images=[pb.Frame(data=jpeg, format=pb.IMAGE_FORMAT_JPEG, t_s=0.0)],
        sampling=pb.SamplingParams(max_new_tokens=8),
    )
    start = time.perf_counter()
    try:
        reply = await stub.Ask(request, timeout=args.deadline_ms / 1000, metadata=metadata)
        outcome, answer = "ok", reply.text
    except grpc.aio.AioRpcError as exc:
        err = error_from_rpc(exc)
        outcome, answer = getattr(err, "code", "error"), ""
        if outcome != "deadline_exceeded":
            print(f"  error: {err}", file=sys.stderr)
    latency = time.perf_counter() - start
    results.append((latency, outcome, answer))
    if args.verbose:
        print(f"  {latency * 1e3:7.1f} ms  {outcome:18s} {answer}")


async def control_loop(args: argparse.Namespace, target: str) -> list:
    metadata = (("authorization", f"Bearer {args.api_key}"),) if args.api_key else ()
    if args.tls_ca:
        with open(args.tls_ca, "rb") as f:
            channel = grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(f.read()))
    else:
        channel = grpc.aio.insecure_channel(target)
    results: list = []
    async with channel:
        stub = pb_grpc.StreamerStub(channel)
        try:  # without a bound, a wrong --target (or no server yet) would wait here forever, silently
            await asyncio.wait_for(channel.channel_ready(), args.connect_timeout_s)
        except asyncio.TimeoutError:
            raise SystemExit(
                f"robot_controller: error: no gRPC server answered at {target} within {args.connect_timeout_s:g} s "
                "(is `streamer serve` running? --target HOST:PORT)"
            ) from None
        period = 1.0 / args.hz
        start = time.perf_counter()
        tasks = []
        for n, frame in enumerate(camera(args.video, args.hz)):
            if n >= round(args.seconds * args.hz):
                break
            due = start + n * period
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            jpeg = encode_jpeg(np.ascontiguousarray(frame.image))
            tasks.append(asyncio.ensure_future(tick(stub, jpeg, args, metadata, results)))
        await asyncio.gather(*tasks)
    return results


def report(results: list, args: argparse.Namespace) -> None:
    latencies = [r[0] * 1e3 for r in results]
    ok = [r[0] * 1e3 for r in results if r[1] == "ok"]
    outcomes = Counter(r[1] for r in results)
    answers = Counter(r[2] for r in results if r[1] == "ok")
    print(f"ticks: {len(results)} at {args.hz:g} Hz, deadline {args.deadline_ms:g} ms")
    print(f"outcomes: {dict(outcomes)}")
    print(f"answers: {dict(answers)}")
    for name, values in (("all calls", latencies), ("answered", ok)):
        if values:
            print(
                f"latency ({name}, ms): p50 {percentile(values, 50):.1f}  p90 {percentile(values, 90):.1f}  "
                f"p99 {percentile(values, 99):.1f}  max {max(values):.1f}"
            )


def spawn_server(threads: int | None) -> tuple[subprocess.Popen, str]:
    """``streamer serve`` on any free ports (the bundled model); returns it and its gRPC target."""
    command = [sys.executable, "-m", "streamer", "serve", "--http-port", "0", "--grpc-port", "0"]
    if threads:
        command += ["--threads", str(threads)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    match = re.search(r"grpc on (\S+):(\d+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"streamer serve did not start: {line!r}")
    return proc, f"{match.group(1)}:{match.group(2)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", help="a video file used as the camera")
    parser.add_argument("--target", default="127.0.0.1:50051", help="gRPC address (default 127.0.0.1:50051)")
    parser.add_argument("--spawn", action="store_true", help="start a `streamer serve` of its own")
    parser.add_argument(
        "--server-threads",
        type=int,
        default=None,
        help="with --spawn: its torch threads (1 is best on a busy CPU)",
    )
    parser.add_argument("--hz", type=float, default=5.0, help="ticks per second, 5-10 (default 5)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to run (default 20)")
    parser.add_argument("--question", default="Is the gripper holding the cup?")
    parser.add_argument("--choices", default="yes,no", type=lambda s: [c for c in s.split(",") if c])
    parser.add_argument("--deadline-ms", type=float, default=500.0, help="per-call deadline (default 500)")
    parser.add_argument(
        "--api-key", default=os.environ.get("STREAMER_API_KEY"), help="default: $STREAMER_API_KEY"
    )
    parser.add_argument("--tls-ca", default=None, metavar="PEM", help="CA certificate: connect with TLS")
    parser.add_argument(
        "--connect-timeout-s", type=float, default=10.0, help="seconds to wait for the server (default 10)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per tick")
    args = parser.parse_args()
    if not 0 < args.hz <= 30 or not args.choices:
        parser.error("--hz must be in (0, 30] and --choices must name at least one answer")
    if not 0 < args.connect_timeout_s <= 3600:
        parser.error("--connect-timeout-s must be in (0, 3600]")
    check_camera(args.video)
    proc, target = spawn_server(args.server_threads) if args.spawn else (None, args.target)
    try:
        results = asyncio.run(control_loop(args, target))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
    report(results, args)
    return 0 if results and all(r[1] in ("ok", "deadline_exceeded") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
