"""Mutated media files (byte flips, truncations, zeroed and repeated chunks) through ``probe``.

Two worker processes decode the files in-process; the parent gives each file a time limit and
notices hard crashes (a worker that dies). ``STREAMER_FUZZ_COUNT`` raises the number of files
(default 3000, about 15-25 s on two cores).
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ._gen import have_encoder, wav_bytes, write_media

COUNT = int(os.environ.get("STREAMER_FUZZ_COUNT", "3000"))
WORKERS = 2
TIME_LIMIT_S = 10.0  # per file; the seeds decode in milliseconds
ROOT = Path(__file__).resolve().parents[2]


def _seeds(d: Path) -> list[bytes]:
    small = {"duration_s": 1.5, "fps": 10, "size": (64, 48), "sample_rate": 16000}
    specs = [
        ("s.mp4", {"vcodec": "libx264", "acodec": "aac"}),
        ("s.webm", {"vcodec": "libvpx", "acodec": "libopus", "sample_rate": 48000}),
        ("s.mkv", {"vcodec": "mjpeg", "acodec": "flac", "pix_fmt": "yuvj420p"}),
        ("s.avi", {"vcodec": "mpeg4", "acodec": "pcm_s16le"}),
        ("s.mp3", {"vcodec": None, "acodec": "libmp3lame", "sample_rate": 44100}),
    ]
    seeds = [wav_bytes(np.sin(np.arange(8000) / 5.0) * 0.3, 16000)]
    for name, spec in specs:
        args = {**small, **spec}
        if not all(have_encoder(c) for c in (args["vcodec"], args["acodec"]) if c):
            continue
        seeds.append(write_media(d / name, **args).read_bytes())
    return seeds


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    kind = int(rng.integers(0, 5))
    if kind == 0:  # flip a few bytes
        for _ in range(int(rng.integers(1, 20))):
            b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
    elif kind == 1:  # truncate
        b = b[: int(rng.integers(1, len(b)))]
    elif kind == 2:  # zero a chunk
        i = int(rng.integers(0, len(b)))
        b[i : i + int(rng.integers(1, 2000))] = bytes(min(len(b) - i, 2000))[: len(b[i : i + 2000])]
    elif kind == 3:  # repeat a chunk
        i = int(rng.integers(0, len(b)))
        b[i:i] = b[i : i + int(rng.integers(1, 4000))]
    else:  # flips in the header, where sizes and counts live
        for _ in range(int(rng.integers(1, 6))):
            b[int(rng.integers(0, min(len(b), 512)))] = int(rng.integers(0, 256))
    return bytes(b)


class _Worker:
    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("fuzz_worker.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )

    def probe(self, path: Path) -> str:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], TIME_LIMIT_S)
        if not ready:
            self.kill()
            return "hang"
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            return f"died with exit code {code}"
        return line.strip()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass


@pytest.mark.slow
def test_fuzz_probe_never_crashes_or_hangs(tmp_path: Path) -> None:
    seeds = _seeds(tmp_path)
    rng = np.random.default_rng(20240601)
    files = []
    for i in range(COUNT):
        path = tmp_path / f"fuzz_{i:05d}.bin"
        path.write_bytes(_mutate(seeds[i % len(seeds)], rng))
        files.append(path)
    failures: list[str] = []
    lock = threading.Lock()
    queue = list(reversed(files))

    def run() -> None:
        worker = _Worker()
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    path = queue.pop()
                answer = worker.probe(path)
                if answer != "ok":
                    with lock:
                        failures.append(f"{path.name}: {answer}")
                    if worker.proc.poll() is not None:
                        worker.kill()
                        worker = _Worker()
        finally:
            worker.kill()

    start = time.monotonic()
    threads = [threading.Thread(target=run) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    assert not failures, f"{len(failures)} of {COUNT} files failed in {elapsed:.0f} s:\n" + "\n".join(
        failures[:20]
    )
