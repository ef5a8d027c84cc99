"""The ``streamer`` command line: one module per command.

Each command module exposes ``add_arguments(parser)`` and ``run(args) -> int``, and may expose
``check_args(args) -> str | None``: options that contradict each other (each valid alone), as a
message. Every error a user can cause prints exactly one line on stderr, never a traceback:

* a bad flag or value (argparse, the types of :mod:`streamer.cli.args`, ``check_args``):
  ``streamer CMD: error: ...``, exit code 2, before any file is opened or model loaded;
* a :class:`streamer.errors.StreamerError` from the work: ``streamer CMD: error: ...``, exit code 1;
* Ctrl-C: ``streamer CMD: interrupted``, exit code 130 (see :mod:`streamer.cli.interrupt`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, Protocol, cast

from streamer import __version__
from streamer.cli.interrupt import EXIT_INTERRUPTED, graceful_interrupts
from streamer.errors import StreamerError
from streamer.text import display

__all__ = ["main", "one_line"]

# command name -> (module under streamer.cli, one-line help). Modules are imported lazily so
# `streamer probe` never pays for importing torch.
COMMANDS: dict[str, tuple[str, str]] = {
    "verify": ("verify", "check a checkpoint against the transformers reference"),
    "probe": ("probe", "show what the model would see of a media file"),
    "ask": ("ask", "stream a recording into a session, then ask a question"),
    "summarize": ("summarize", "summarize meeting recordings"),
    "serve": ("serve", "live endpoints: WebSocket + HTTP (and gRPC) on an in-process engine"),
    "finetune": ("finetune", "fine-tune a checkpoint (LoRA or full) on media + question + answer examples"),
    "bench": ("bench", "benchmarks: model, media, stream, summarize, serve"),
}


def one_line(message: object) -> str:
    """``message`` as one printable line (newlines folded, undecodable bytes as U+FFFD)."""
    return " ".join(display(str(message)).split("\n")).replace("\r", " ").strip()


def _usage_line(prog: str, message: str) -> str:
    return f"{prog}: error: {one_line(message)} (see {prog} --help)\n"


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line (subcommand parsers inherit the class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, _usage_line(self.prog, message))

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> object:
        # argparse drops a "--" value (`--frames=--`) and stores [] without calling the type.
        if action.nargs is None and action.option_strings and arg_strings == ["--"]:
            self.error(f"argument {'/'.join(action.option_strings)}: expected a value, got '--'")
        return super()._get_values(action, arg_strings)


class _Command(Protocol):
    """What a command module exposes (see the module docstring)."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _build_parser(argv: Sequence[str]) -> tuple[argparse.ArgumentParser, _Command | None]:
    parser = _Parser(
        prog="streamer",
        description="Streaming audio/video inference for encoder-free Gemma 4 Unified models.",
    )
    parser.add_argument("--version", action="version", version=f"streamer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    module: _Command | None = None
    for name, (module_name, help_text) in COMMANDS.items():
        cmd_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = cast(_Command, importlib.import_module(f"streamer.cli.{module_name}"))
            module.add_arguments(cmd_parser)
    return parser, module


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, module = _build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error (2), --help or --version (0): a return code, for callers too
        return exc.code if isinstance(exc.code, int) else 2
    if module is None:
        parser.print_help(sys.stderr)
        return 2
    prog = f"streamer {args.command}"
    check: Callable[[argparse.Namespace], str | None] | None = getattr(module, "check_args", None)
    problem = check(args) if check is not None else None
    if problem:
        sys.stderr.write(_usage_line(prog, problem))
        return 2
    with graceful_interrupts(prog):
        try:
            return int(module.run(args) or 0)
        except StreamerError as exc:
            print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            # The reader went away (`streamer ... | head`): not an error of ours; stay quiet.
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141
