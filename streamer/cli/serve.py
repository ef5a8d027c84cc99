"""``streamer serve``: the live endpoints (HTTP + WebSocket, and gRPC when built) on an in-process engine.

Prints one line ``streamer serve: listening: ...`` on stdout once the servers accept
connections. SIGTERM or Ctrl-C drains (go_away, answers finish within ``--grace-s``) and exits 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from streamer.cli.args import CONTEXT_TOKENS, FPS, TOKENS, number, text
from streamer.cli.common import add_model_arguments

__all__ = ["add_arguments", "run"]

PORT = number(int, 0, 65_535)
_BYTES = number(int, 1, 1 << 34)
_PIXELS = number(int, 1, 1 << 16)
_SECONDS = number(float, 0.0, 1e7, lo_open=True)
_RATE = number(int, 1_000, 384_000)
_COUNT = number(int, 1, 1 << 20)
# each limit's option type: the CLI's range; ServeLimits checks its own again
_LIMIT_TYPES = {
    "max_message_bytes": _BYTES, "max_image_width": _PIXELS, "max_image_height": _PIXELS,
    "max_image_pixels": number(int, 1, 1 << 32), "min_sample_rate": _RATE, "max_sample_rate": _RATE,
    "max_channels": number(int, 1, 64), "max_fps": FPS, "max_sessions": number(int, 1, 100_000),
    "max_session_s": _SECONDS, "go_away_notice_s": _SECONDS, "idle_timeout_s": _SECONDS,
    "max_outbound_messages": _COUNT, "stats_interval_s": number(float, 0.0, 3600.0),
    "max_new_tokens": TOKENS, "max_context_tokens": CONTEXT_TOKENS, "max_question_chars": _COUNT,
    "max_text_chars": number(int, 1, 1 << 24), "max_pending_bytes": number(int, 1 << 20, 1 << 34),
    "max_pending_tokens": number(int, 256, 1 << 24),
}  # fmt: skip

_LIMIT_HELP = {
    "max_message_bytes": "bytes of one client message",
    "max_image_width": "pixels",
    "max_image_height": "pixels",
    "max_image_pixels": "width x height",
    "min_sample_rate": "Hz of client PCM",
    "max_sample_rate": "Hz of client PCM",
    "max_channels": "PCM channels",
    "max_fps": "pictures per second a session may take in",
    "max_sessions": "live sessions at once",
    "max_session_s": "seconds a live session may last",
    "go_away_notice_s": "seconds of go_away notice before max-session-s",
    "idle_timeout_s": "seconds without a client message before a session closes",
    "max_outbound_messages": "server messages queued per connection",
    "stats_interval_s": "seconds between stats messages (0: only after answers)",
    "max_new_tokens": "largest answer a client may ask for, tokens",
    "max_context_tokens": "largest KV budget a client may ask for, tokens (None: the engine default)",
    "max_question_chars": "characters of one question",
    "max_text_chars": "characters of one text turn or system prompt",
    "max_pending_bytes": "bytes of media queued per session",
    "max_pending_tokens": "tokens queued per session",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from streamer.serve.limits import ServeLimits

    add_model_arguments(parser)
    parser.add_argument(
        "--host", type=text, default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--http-port", type=PORT, default=8000, help="HTTP/WebSocket port, 0-65535 (default 8000; 0: any)"
    )
    parser.add_argument(
        "--grpc-port", type=PORT, default=50051, help="gRPC port, 0-65535 (default 50051; 0: any)"
    )
    parser.add_argument("--no-grpc", action="store_true", help="do not start the gRPC server")
    parser.add_argument(
        "--summarize-dir", type=text, default=None, metavar="DIR",
        help="let gRPC Summarize read recordings under DIR on this machine (default: uploads only)",
    )  # fmt: skip
    parser.add_argument(
        "--api-key", type=text, default=None, metavar="KEY",
        help="required from clients (default: $STREAMER_API_KEY); mandatory off loopback",
    )  # fmt: skip
    parser.add_argument(
        "--tls-cert", type=text, default=None, metavar="FILE", help="PEM certificate chain (with --tls-key)"
    )
    parser.add_argument("--tls-key", type=text, default=None, metavar="FILE", help="PEM private key")
    parser.add_argument(
        "--grace-s", type=number(float, 0.0, 3600.0), default=10.0,
        help="seconds answers may finish after SIGTERM, 0-3600 (default 10)",
    )  # fmt: skip
    parser.add_argument(
        "--web-dir",
        type=text,
        default=None,
        metavar="DIR",
        help="browser client folder (default: frontends/web)",
    )
    parser.add_argument(
        "--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"]
    )
    parser.add_argument(
        "--fake", action="store_true", help="serve a scripted fake engine (no model; for protocol work)"
    )
    from streamer.cli.ray_options import add_ray_arguments

    add_ray_arguments(parser)
    limits = parser.add_argument_group("limits")
    defaults = ServeLimits()
    for f in dataclasses.fields(ServeLimits):
        kind = _LIMIT_TYPES[f.name]
        limits.add_argument(
            "--" + f.name.replace("_", "-"), type=kind, default=None, metavar="N",
            help=f"{_LIMIT_HELP[f.name]}: {kind.describe()} (default {getattr(defaults, f.name)})",
        )  # fmt: skip


def _limits(args: argparse.Namespace):  # noqa: ANN202 - ServeLimits
    from streamer.serve.limits import ServeLimits

    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(ServeLimits)
        if getattr(args, f.name, None) is not None
    }
    return ServeLimits(**given)


def _resolved(path: str | None) -> str | None:
    from pathlib import Path

    return None if path is None else str(Path(path).resolve())


def run(args: argparse.Namespace) -> int:
    import asyncio

    from streamer.engine.runtime import EngineConfig
    from streamer.serve.auth import check_bind, resolve_api_key
    from streamer.serve.options import ServeOptions

    limits = _limits(args)
    options = ServeOptions(
        host=args.host,
        http_port=args.http_port,
        grpc_port=None if args.no_grpc else args.grpc_port,
        api_key=resolve_api_key(args.api_key),
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        limits=limits,
        grace_s=args.grace_s,
        web_dir=args.web_dir,
        log_level=args.log_level,
        summarize_dir=_resolved(args.summarize_dir),
    )
    check_bind(options.host, options.api_key)  # before loading a model
    options.check_files()
    if args.ray is not None:  # the same app on Ray Serve replicas; nothing loads here
        from streamer.cli.ray_options import serve_ray

        return serve_ray(args, options)
    config = EngineConfig(max_sessions=limits.max_sessions + 8, idle_timeout_s=limits.idle_timeout_s + 120)
    if args.fake:
        from streamer.engine.fake import FakeEngine

        engine = FakeEngine(step_delay_s=0.02, config=config)
        engine.start()
    else:
        from streamer.cli.common import load_engine

        engine = load_engine(args, config)
    from streamer.serve.server import serve

    def ready(listening) -> None:  # noqa: ANN001 - Listening
        print(f"streamer serve: listening: {listening.describe()}", flush=True)

    try:
        asyncio.run(serve(engine, options, on_ready=ready))
    finally:
        engine.stop()
    print("streamer serve: stopped", file=sys.stderr, flush=True)
    return 0
