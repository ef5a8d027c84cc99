"""``streamer summarize PATH...``: timestamped notes and a summary of meeting recordings.

Each input streams through a session in chunks of ``--chunk-minutes`` of media; notes are asked
at each chunk's end, the summary at the end (see :mod:`streamer.summarize`). One input without
``--out`` prints to stdout; ``--out DIR`` writes ``DIR/<stem>.md|.json`` (atomically). Progress
and logs go to stderr. A failing input does not stop the others: a final report names each
failure and the exit code is 1 when any failed. After a crash or Ctrl-C, ``--resume`` continues
each input from its last finished chunk.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from streamer.cli.args import CONTEXT_TOKENS, FPS, number
from streamer.cli.common import add_model_arguments, load_engine
from streamer.errors import StreamerError
from streamer.text import display

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("paths", nargs="+", metavar="PATH", help="recordings, or directories of recordings")
    add_model_arguments(parser)
    add("--out", metavar="FILE|DIR", help="output file (one input) or directory (default: stdout)")
    add("--format", choices=["md", "json"], default=None,
        help="Markdown or JSON (default: from --out's extension, else md)")  # fmt: skip
    add("--fps", type=FPS, default=1.0, help="video frames sampled per second (default 1)")
    add("--chunk-minutes", type=number(float, 0.02, 24 * 60.0), default=1.0, metavar="M",
        help="minutes of media per chunk of notes; fractions allowed (default 1)")  # fmt: skip
    add("--prompt", metavar="FILE",
        help="replace the summary prompt with FILE's text, or set prompts by name from a .toml file "
             "(system, notes, summary, merge)")  # fmt: skip
    add("--resume", action="store_true",
        help="continue interrupted runs from their last finished chunk; skip finished outputs")  # fmt: skip
    add("--quiet", action="store_true", help="no progress or log lines (failures still print)")
    add("--note-tokens", type=number(int, 1, 8192), default=96, metavar="N",
        help="cap of each chunk's notes (default 96)")  # fmt: skip
    add("--summary-tokens", type=number(int, 1, 8192), default=256, metavar="N",
        help="cap of the summary (default 256)")  # fmt: skip
    add("--max-context-tokens", type=CONTEXT_TOKENS, default=None, metavar="N",
        help="the session's KV budget in tokens (default: one chunk of media + 4k tokens of notes, at most "
             "the engine's default)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from streamer.outputs import atomic_write_text, check_output_dir, check_output_file
    from streamer.summarize import StateDir, SummarizeOptions, load_prompts, render, summarize_recording
    from streamer.summarize.inputs import expand_inputs, output_format, plan_jobs
    from streamer.summarize.progress import make_progress

    fmt = output_format(args.format, args.out)
    options = SummarizeOptions.from_minutes(
        args.chunk_minutes, fps=args.fps, note_tokens=args.note_tokens, summary_tokens=args.summary_tokens,
        max_context_tokens=args.max_context_tokens, prompts=load_prompts(args.prompt),
    )  # fmt: skip
    files, failed = expand_inputs(args.paths)
    failed = [(display(path), why) for path, why in failed]
    several = len(args.paths) > 1 or any(Path(p).is_dir() for p in args.paths)
    jobs = plan_jobs(files, args.out, fmt, several=several) if files else []
    progress = make_progress(args.quiet)
    inputs = len(jobs) + len(failed)  # for the report: planned files and empty directories
    for job in jobs:  # every output and state folder is writable before any model work starts
        if job.output is not None:
            check_output_file(job.output)
        check_output_dir(job.state_dir, create=False)
    if args.resume:
        done = [j for j in jobs if j.output and j.output.exists() and not StateDir(j.state_dir).exists()]
        for job in done:
            assert job.output is not None  # done: its output exists
            progress.info(
                f"{display(job.source.name)}: already summarized in {display(job.output)}; skipped (--resume)"
            )
        jobs = [j for j in jobs if j not in done]
    if not jobs:
        return _report(failed, inputs)
    engine = load_engine(args)
    for job in jobs:
        state = StateDir(job.state_dir)
        try:
            result = summarize_recording(engine, job.source, options, state_dir=state, resume=args.resume,
                                         progress=progress)  # fmt: skip
            text = render(result, fmt)
            if job.output is None:
                sys.stdout.write(text)
                sys.stdout.flush()
            else:
                atomic_write_text(job.output, text)
            state.remove()
            progress.info(f"{display(job.source.name)}: done{f' → {display(job.output)}' if job.output else ''} "
                          f"({result.timings['total_s']:.1f} s)")  # fmt: skip
        except KeyboardInterrupt:
            print(f"streamer summarize: {display(job.source)}: interrupted; rerun with --resume to continue "
                  "from the last finished chunk", file=sys.stderr)  # fmt: skip
            raise
        except BrokenPipeError:
            raise  # stdout's reader went away: stop quietly (handled in streamer.cli.main)
        except StreamerError as exc:
            failed.append((display(job.source), display(str(exc))))
            progress.info(f"{display(job.source.name)}: failed: {display(str(exc))}")
        except Exception as exc:  # a bug on one input must not lose the others
            traceback.print_exc()
            failed.append(
                (display(job.source), f"internal error: {type(exc).__name__}: {display(str(exc))[:200]}")
            )
    return _report(failed, inputs)


def _report(failed: list[tuple[str, str]], inputs: int) -> int:
    """The final report on stderr; 1 when any input failed."""
    if not failed:
        return 0
    print(f"streamer summarize: {len(failed)} of {inputs} input(s) failed:", file=sys.stderr)
    for path, why in failed:
        print(f"  {path}: {why}", file=sys.stderr)
    return 1
