"""The ``streamer`` command line: one module per command.

Each command module exposes ``add_arguments(parser)`` and ``run(args) -> int``. User errors
(:class:`streamer.errors.StreamerError`) become one line on stderr and exit code 1; argparse
usage errors exit 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from streamer import __version__
from streamer.errors import StreamerError

__all__ = ["main"]

# command name -> (module under streamer.cli, one-line help). Modules are imported lazily so
# `streamer probe` never pays for importing torch.
COMMANDS: dict[str, tuple[str, str]] = {
    "verify": ("verify", "check a checkpoint against the transformers reference"),
    "probe": ("probe", "show what the model would see of a media file"),
    "ask": ("ask", "stream a recording into a session, then ask a question"),
    "summarize": ("summarize", "summarize meeting recordings"),
    "serve": ("serve", "live endpoints: WebSocket + HTTP (and gRPC) on an in-process engine"),
    "bench": ("bench", "benchmarks: model, media, stream, summarize, serve"),
}


def _build_parser(argv: Sequence[str]) -> tuple[argparse.ArgumentParser, object | None]:
    parser = argparse.ArgumentParser(
        prog="streamer",
        description="Streaming audio/video inference for encoder-free Gemma 4 Unified models.",
    )
    parser.add_argument("--version", action="version", version=f"streamer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    module = None
    for name, (module_name, help_text) in COMMANDS.items():
        cmd_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(f"streamer.cli.{module_name}")
            module.add_arguments(cmd_parser)
    return parser, module


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, module = _build_parser(argv)
    args = parser.parse_args(argv)
    if module is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(module.run(args) or 0)
    except StreamerError as exc:
        print(f"streamer {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"streamer {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`streamer ... | head`): not an error of ours; stay quiet.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
