"""Fuzz worker: reads file paths on stdin, probes each in-process, answers one line per file.

    ok       decoded, or refused with a StreamerError (the contract)
    crash    any other exception (a bug); the message follows

Run by test_fuzz.py, which enforces the per-file time limit and watches for hard crashes.
"""

from __future__ import annotations

import resource
import sys

from streamer.cli.probe import probe_file
from streamer.errors import StreamerError
from streamer.media import SamplingPolicy

POLICIES = [SamplingPolicy.fixed_rate(2.0), SamplingPolicy.uniform(4), SamplingPolicy.scene(0.05, 0.2, 2.0)]


def main() -> None:
    limit = 3 * 2**30  # bytes of address space: a runaway allocation fails instead of swapping
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for i, line in enumerate(sys.stdin):
        path = line.strip()
        try:
            probe_file(path, POLICIES[i % len(POLICIES)])
            answer = "ok"
        except StreamerError:
            answer = "ok"
        except BaseException as exc:  # noqa: BLE001 - report everything else as a crash
            answer = f"crash {type(exc).__name__}: {exc}".replace("\n", " ")
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
