"""``streamer bench media``: file decoding at 1 fps vs a naive PyAV loop, x real time and peak RSS.

Generates (once, cached) N minutes of 1280x720 25 fps H.264 + 48 kHz stereo AAC that looks like
a meeting (static slide, a moving speaker box, a changing caption strip), then decodes it in
separate child processes so each path's peak RSS is its own (the child's VmHWM; ``ru_maxrss``
would include the parent's memory from before ``exec``):

    naive      PyAV default decode of every frame, every frame converted to RGB
    streamer   open_media(policy=1 fps).video()          (same output: sampled RGB frames)
    streamer+a open_media(policy=1 fps).items()          (frames + 16 kHz 40 ms audio)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from streamer import jsonio
from streamer.benchmarks.memory import peak_rss_mb
from streamer.cli.args import FPS, MINUTES
from streamer.errors import StreamerError

__all__ = ["add_arguments", "run"]

_W, _H, _FPS, _RATE = 1280, 720, 25, 48_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=MINUTES, default=30.0, help="length of the generated recording")
    parser.add_argument("--fps", type=FPS, default=1.0, help="sampling rate of the streamer path")
    parser.add_argument(
        "--cache-dir", default=None, help="where the generated file is kept (default: user cache)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")


def _cache_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "streamer" / "bench"
    try:
        path.mkdir(parents=True, exist_ok=True)
        return path
    except OSError:
        return Path(tempfile.gettempdir()) / "streamer-bench"


def cached_recording(cache_dir: str | None, minutes: float) -> Path:
    """The generated 720p H.264 + AAC meeting of ``minutes``, written once (progress on stderr)."""
    import sys

    from streamer.errors import InputError
    from streamer.media.synth import write_synthetic_recording

    if minutes <= 0:
        raise InputError("--minutes must be positive")
    path = _cache_dir(cache_dir) / f"meeting_{minutes:g}min_720p_h264_aac.mp4"
    if not path.exists():
        print(
            f"generating {minutes:g} min of 720p H.264 + AAC into {path} (cached for reruns) ...",
            file=sys.stderr,
        )
        t0 = time.perf_counter()
        write_synthetic_recording(path, minutes=minutes, size=(_W, _H), fps=_FPS, sample_rate=_RATE)
        print(f"  generated in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return path


def _child(mode: str, path: str, fps: float) -> None:
    """Run one decoding path and print its figures (called in a fresh interpreter)."""
    start = time.perf_counter()
    frames = tokens = 0
    if mode == "naive":
        import av

        with av.open(path) as container:
            for frame in container.decode(video=0):
                frame.to_ndarray(format="rgb24")
                frames += 1
    else:
        from streamer.media import AudioFrames, SamplingPolicy, open_media

        with open_media(path, SamplingPolicy.fixed_rate(fps)) as media:
            items = media.items() if mode == "streamer+audio" else media.video()
            for item in items:
                if isinstance(item, AudioFrames):
                    tokens += item.num_frames
                else:
                    frames += 1
    seconds = time.perf_counter() - start
    print(
        jsonio.dumps(
            {"seconds": seconds, "frames": frames, "audio_tokens": tokens, "peak_rss_mb": peak_rss_mb()}
        )
    )


def _measure(mode: str, path: Path, fps: float) -> dict[str, float]:
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = f"from streamer.benchmarks.media import _child; _child({mode!r}, {str(path)!r}, {fps!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    if proc.wait() != 0:
        raise StreamerError(f"{mode} child failed with exit code {proc.returncode}")
    return jsonio.loads(out.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> int:
    path = cached_recording(args.cache_dir, args.minutes)
    media_s = args.minutes * 60
    rows = {mode: _measure(mode, path, args.fps) for mode in ("naive", "streamer", "streamer+audio")}
    for r in rows.values():
        r["x_realtime"] = media_s / r["seconds"]
    speedup = rows["naive"]["seconds"] / rows["streamer"]["seconds"]
    if args.json:
        print(
            jsonio.dumps(
                {"minutes": args.minutes, "file": str(path), "paths": rows, "speedup_vs_naive": speedup}
            )
        )
        return 0
    print(
        f"{args.minutes:g} min 1280x720 25 fps H.264 + AAC, sampled at {args.fps:g} fps ({path.stat().st_size / 2**20:.0f} MiB)"
    )
    print(f"{'path':<16}{'seconds':>9}{'x real time':>13}{'peak RSS MB':>13}{'frames':>9}{'audio tok':>11}")
    for mode, r in rows.items():
        print(
            f"{mode:<16}{r['seconds']:>9.1f}{r['x_realtime']:>13.1f}{r['peak_rss_mb']:>13.0f}"
            f"{r['frames']:>9.0f}{r['audio_tokens']:>11.0f}"
        )
    print(f"streamer video path vs naive: {speedup:.2f}x faster")
    return 0


if __name__ == "__main__":  # python -m streamer.benchmarks.media (same flags as `streamer bench media`)
    _parser = argparse.ArgumentParser(prog="streamer bench media", description=__doc__.splitlines()[0])
    add_arguments(_parser)
    sys.exit(run(_parser.parse_args()))
