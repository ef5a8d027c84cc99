"""Fuzz every numeric option of every command: one line on stderr, no traceback, exit code 1 or 2.

The options are found by walking the real parsers, so a new option is fuzzed without editing
this file, and one without a validated type (streamer.cli.args) fails the first test here.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys

import pytest

from streamer.cli import COMMANDS, _build_parser
from streamer.cli.args import Number
from streamer.media.synth import write_synthetic_recording

POSITIONALS = {"probe": ["x.mp4"], "ask": ["x.mp4", "q"], "summarize": ["x.mp4"]}
BAD = ["nan", "inf", "-inf", "1e309", "abc", "", "-1", "18446744073709551616", "0x10", "1,5", "--", "1e400"]


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """Command line prefix ("ask", "bench stream") -> its parser."""
    found: dict[str, argparse.ArgumentParser] = {}
    for name in COMMANDS:
        root, _ = _build_parser([name])
        sub = next(a for a in root._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if nested:
            found.update({f"{name} {bench}": p for bench, p in nested[0].choices.items()})
        else:
            found[name] = parser
    return found


def _numeric(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if a.option_strings and (isinstance(a.type, Number) or getattr(a.type, "__name__", "") == "list")
    ]


def test_every_numeric_option_has_a_validated_type():
    for command, parser in _parsers().items():
        for action in parser._actions:
            assert action.type not in (int, float), (
                f"{command} {action.option_strings}: use streamer.cli.args"
            )
            default = action.default
            if isinstance(default, (int, float)) and not isinstance(default, bool) and action.option_strings:
                assert isinstance(action.type, Number), f"{command} {action.option_strings}: not validated"
    assert sum(len(_numeric(p)) for p in _parsers().values()) >= 50


def _bad_values(action: argparse.Action, rng: random.Random) -> str:
    kind = action.type
    if isinstance(kind, Number):
        edges = []
        if kind.lo is not None:
            edges.append(
                repr(kind.lo - (0 if kind.lo_open else (1 if kind.kind is int else kind.lo / 2 + 1e-9)))
            )
        if kind.hi is not None:
            edges.append(repr(kind.hi * 2 + 1))
        if kind.kind is int:
            edges.append("1.5")
        return rng.choice(edges + BAD)
    return rng.choice(["abc", "1,,2", "-1", "nan", "1,inf"])


def _run(*args: str, home: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STREAMER_HOME": home}
    return subprocess.run(
        [sys.executable, "-m", "streamer", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def _assert_one_line(proc: subprocess.CompletedProcess[str], codes: tuple[int, ...] = (1, 2)) -> None:
    assert proc.returncode in codes, (proc.args, proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and ": error: " in lines[0], (proc.args, proc.stderr)


def test_random_bad_values_of_every_numeric_option(tmp_path):
    rng = random.Random(13)
    runs = 0
    for command, parser in _parsers().items():
        head = command.split()
        for action in [a for a in _numeric(parser) for _ in range(2)]:  # two random values each
            value = _bad_values(action, rng)
            if value != "--":  # the premise: the type refuses it (else the command would run for real)
                with pytest.raises(argparse.ArgumentTypeError):
                    action.type(value)
            option = action.option_strings[-1]
            proc = _run(*head, *POSITIONALS.get(head[0], []), f"{option}={value}", home=str(tmp_path))
            _assert_one_line(proc, (2,))
            assert option in proc.stderr, proc.stderr
            runs += 1
    assert runs >= 100


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return write_synthetic_recording(
        tmp_path_factory.mktemp("rec") / "talk.mp4", minutes=0.05, size=(64, 48), fps=2
    )


def test_values_that_pass_parsing_but_fail_later_are_one_line(bundled_dir, recording, tmp_path):
    home = str(bundled_dir.parent.parent)
    cases = [
        ["ask", recording, "q", "--max-context-tokens", "5", "--threads", "1"],
        ["ask", recording, "q", "--device", "cuda:7", "--threads", "1"],
        ["summarize", recording, "--out", "/dev/null"],
        ["verify", "--model", tmp_path / "no-such-model"],
    ]
    for args in cases:
        _assert_one_line(_run(*map(str, args), home=home, timeout=120), (1,))
    # options valid alone that contradict each other: a usage error (exit 2) before any work
    probe = ["probe", recording, "--scene", "0.5", "--min-interval", "20", "--max-interval", "10"]
    _assert_one_line(_run(*map(str, probe), home=home, timeout=120), (2,))


def test_boundary_values_of_every_ask_option_still_answer(bundled_dir, recording):
    proc = _run(
        "ask", str(recording), "q", "--json", "--threads", "1", "--max-new-tokens", "1", "--temperature", "100",
        "--top-k", "16777216", "--top-p", "1e-6", "--seed", str(2**63 - 1), "--fps", "30",
        home=str(bundled_dir.parent.parent), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
