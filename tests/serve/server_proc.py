"""A real ``streamer serve`` subprocess on loopback for end-to-end tests (bundled model or --fake)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_LISTENING = re.compile(r"listening: http on https?://[^:]+:(\d+)/")


class ServerProcess:
    def __init__(self, proc: subprocess.Popen[str], port: int, lines: list[str]):
        self.proc = proc
        self.port = port
        self.lines = lines  # everything it printed (stdout + stderr)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/live"

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the exit code (SIGKILL after ``timeout``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise


@contextmanager
def serve_process(
    *args: str, env: dict[str, str] | None = None, timeout: float = 90.0, grpc_port: int | None = None
) -> Iterator[ServerProcess]:
    """``python -m streamer serve --http-port 0 --no-grpc ARGS`` (or ``--grpc-port``) until it listens."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    grpc = ["--grpc-port", str(grpc_port)] if grpc_port is not None else ["--no-grpc"]
    cmd = [sys.executable, "-m", "streamer", "serve", "--http-port", "0", *grpc, *args]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    lines: list[str] = []
    port: list[int] = []
    got = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            m = _LISTENING.search(line)
            if m and not port:
                port.append(int(m.group(1)))
                got.set()
        got.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not got.wait(0.1):
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("streamer serve did not start:\n" + "\n".join(lines))
    if not port:
        proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
        raise AssertionError(f"streamer serve exited with {proc.returncode}:\n" + "\n".join(lines))
    server = ServerProcess(proc, port[0], lines)
    try:
        yield server
    finally:
        if proc.poll() is None:
            server.terminate()
        if proc.stdout is not None:
            proc.stdout.close()
