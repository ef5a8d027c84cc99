"""``streamer bench NAME``: benchmarks that print figures side by side with a baseline in one run.

Each benchmark lives in ``streamer.benchmarks.<name>`` and exposes ``add_arguments(parser)`` and
``run(args) -> int``, like a CLI command; its top level imports nothing heavy (torch, av are
imported inside ``run``) because every benchmark's arguments are registered up front.
Benchmarks are never timed unit tests.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util

BENCHMARKS: dict[str, str] = {
    "model": "prefill/decode tokens/s vs transformers on a mid-size random config",
    "media": "file decoding at 1 fps: x real time and peak RSS vs a naive PyAV loop",
    "stream": "live-session TTFT, KV bytes over time, ingest speed, batched decode",
    "summarize": "end-to-end summarization of a long generated recording",
    "serve-core": "event-loop heartbeat, inter-token gaps and a fast pusher's memory vs the naive seam",
    "serve": "live endpoints on loopback: per-frame WebSocket ingest overhead, a 20-session load test",
    "realtime": "per-event cost of /v1/realtime (OpenAI protocol) vs /v1/live on the same session",
    "ray-serve": "Ray Serve path vs streamer serve: per-message/answer overhead, 1 vs 2 replica throughput",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="benchmark", metavar="NAME", required=True)
    for name, help_text in BENCHMARKS.items():
        module_name = f"streamer.benchmarks.{name.replace('-', '_')}"
        if importlib.util.find_spec(module_name) is None:
            continue  # not built yet
        bench_parser = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module_name).add_arguments(bench_parser)
        bench_parser.set_defaults(bench_module=module_name)


def run(args: argparse.Namespace) -> int:
    module = importlib.import_module(args.bench_module)
    return int(module.run(args) or 0)
