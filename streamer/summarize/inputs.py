"""Inputs and where their results go: paths and directories → :class:`Job` (plain data, no I/O but stat).

* A directory stands for the media files directly in it (by extension, sorted, hidden files skipped).
* One input and no ``--out``: the summary goes to stdout, the resume state to
  ``./<input name>.summarize-state/``.
* ``--out DIR`` (an existing directory, a path ending in ``/``, or several inputs): each input
  gets ``DIR/<input stem>.md`` (or ``.json``); two inputs with one stem are refused.
* ``--out FILE``: the one input's summary. The state lives beside the output:
  ``<output>.summarize-state/``, removed once the output is written.

A state folder's name is always valid UTF-8: bytes of a file name that are not UTF-8 are written
as ``\\xe9`` there (the snapshot library needs UTF-8 paths); outputs keep the input's bytes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from streamer.errors import InputError
from streamer.text import invalid_utf8

__all__ = ["Job", "MEDIA_SUFFIXES", "expand_inputs", "plan_jobs", "output_format"]

MEDIA_SUFFIXES = frozenset(
    ".mp4 .m4v .mov .m4a .mkv .webm .avi .ts .mts .m2ts .mpg .mpeg .flv .asf .wmv .ogg .ogv .oga .opus "
    ".wav .w64 .aif .aiff .caf .mp3 .aac .flac .amr .ac3 .mxf .nut .3gp".split()
)
STATE_SUFFIX = ".summarize-state"


@dataclass(frozen=True)
class Job:
    source: Path  # the input media file
    output: Path | None  # where the summary is written; None: stdout
    state_dir: Path  # where the resume state is kept while the job runs


def expand_inputs(paths: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """(files in order without duplicates, failures as (path, why)) for ``paths``."""
    files: list[Path] = []
    failed: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p for p in path.iterdir()
                if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in MEDIA_SUFFIXES
            )  # fmt: skip
            if not found:
                failed.append((raw, "no media files in this directory"))
            files += found
        else:
            files.append(path)  # a missing or unreadable file fails when it is opened
    unique: dict[str, Path] = {}
    for f in files:
        unique.setdefault(os.path.abspath(f), f)
    return list(unique.values()), failed


def output_format(fmt: str | None, out: str | None) -> str:
    """``--format``, else from ``--out``'s extension (``.json`` → json), else md."""
    if fmt:
        return fmt
    return "json" if out and out.lower().endswith(".json") else "md"


def plan_jobs(files: list[Path], out: str | None, fmt: str, *, several: bool = False) -> list[Job]:
    """Output and state paths for each file (see the module docstring); ``several``: inputs were a list."""
    if out is None:
        if len(files) > 1 or several:
            raise InputError(f"{len(files)} inputs: give --out DIR for their summaries")
        return [Job(f, None, Path.cwd() / _state_name(f.name)) for f in files]
    target = Path(out)
    if target.is_dir() or out.endswith(("/", os.sep)) or len(files) > 1 or several:
        if target.exists() and not target.is_dir():
            raise InputError(f"--out {out} is a file, but several inputs need a directory")
        jobs: list[Job] = []
        seen: dict[Path, Path] = {}  # output → the input that writes it
        for f in files:
            output = target / f"{f.stem}.{fmt}"
            if output in seen:
                raise InputError(
                    f"{seen[output]} and {f} would both write {output}; summarize them separately"
                )
            seen[output] = f
            jobs.append(Job(f, output, output.with_name(_state_name(output.name))))
        return jobs
    return [Job(files[0], target, target.with_name(_state_name(target.name)))]


def _state_name(name: str) -> str:
    """``<name>.summarize-state``, with bytes that are not UTF-8 written as ``\\xNN``."""
    if invalid_utf8(name) is not None:
        name = os.fsencode(name).decode("utf-8", "backslashreplace")
    return name + STATE_SUFFIX
