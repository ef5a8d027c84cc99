"""``streamer probe FILE``: show what the model would see of a media file.

Decodes the file exactly as a session would (same sampling policy, same 16 kHz audio framing)
and prints the sampled frame times, the number of audio tokens and any warnings; ``--json``
prints one JSON object, ``--dump DIR`` writes the frames as PNG and the audio as WAV.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from streamer import jsonio
from streamer.cli.args import number
from streamer.errors import InputError, MediaError
from streamer.text import display

__all__ = ["add_arguments", "check_args", "run", "probe_file"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="media file (MP4, WebM, MKV, MOV, AVI, WAV, MP3, ...)")
    policy = parser.add_mutually_exclusive_group()
    seconds = number(float, 0.0, 3600.0)
    policy.add_argument(
        "--fps", type=number(float, 0.0, 1000.0, lo_open=True), default=None,
        help="sample F frames per second (default 1)",
    )  # fmt: skip
    policy.add_argument(
        "--frames",
        type=number(int, 1, 100_000),
        default=None,
        help="sample at most N frames spread uniformly",
    )
    policy.add_argument(
        "--scene", type=number(float, 0.0, 1.0), default=None, metavar="T",
        help="sample on scene change >= T (0-1)",
    )  # fmt: skip
    parser.add_argument(
        "--min-interval", type=seconds, default=0.5, help="--scene: min seconds between frames (default 0.5)"
    )
    parser.add_argument(
        "--max-interval", type=seconds, default=10.0, help="--scene: max seconds between frames (default 10)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--dump", metavar="DIR", help="write frame_<i>_<t_ms>.png and audio_16k.wav into DIR")


def check_args(args: argparse.Namespace) -> str | None:
    """A usage error (exit 2, before the file is opened): the interval bounds contradict each other."""
    if args.min_interval > args.max_interval:
        return f"--min-interval {args.min_interval:g} s is more than --max-interval {args.max_interval:g} s"
    return None


def _policy(args: argparse.Namespace) -> Any:
    from streamer.media import SamplingPolicy

    try:
        if args.frames is not None:
            return SamplingPolicy.uniform(args.frames)
        if args.scene is not None:
            return SamplingPolicy.scene(args.scene, args.min_interval, args.max_interval)
        return SamplingPolicy.fixed_rate(args.fps if args.fps is not None else 1.0)
    except ValueError as exc:
        raise InputError(str(exc)) from exc


def probe_file(path: str, policy: Any, dump_dir: str | None = None) -> dict[str, Any]:
    """Decode ``path`` with ``policy``; return the ``--json`` object (and write the dump if asked)."""
    from streamer.media import AudioFrames, encode_png, open_media

    wav = None
    frames: list[dict[str, float]] = []
    audio_tokens = 0
    from streamer.outputs import atomic_write_bytes, check_output_dir, check_output_file

    if dump_dir is not None:
        check_output_dir(dump_dir)  # before any decoding
    with open_media(path, policy) as media:
        info = media.info
        try:
            if dump_dir is not None and info.audio is not None:
                import soundfile

                wav = soundfile.SoundFile(
                    os.fspath(check_output_file(os.path.join(dump_dir, "audio_16k.wav"))),
                    "w",
                    samplerate=16000,
                    channels=1,
                    subtype="FLOAT",
                )
            for item in media.items():
                if isinstance(item, AudioFrames):
                    audio_tokens += item.num_frames
                    if wav is not None:
                        wav.write(item.waveform())
                    continue
                index = len(frames)
                frames.append({"t": round(item.t_s, 6)})
                if dump_dir is not None:
                    name = f"frame_{index:05d}_{round(item.t_s * 1000):08d}.png"
                    atomic_write_bytes(os.path.join(dump_dir, name), encode_png(item.image))
        finally:
            if wav is not None:
                wav.close()
        warnings = [display(w) for w in media.warnings]
    video = info.video
    audio = info.audio
    return {
        "duration_s": info.duration_s,
        "video": None
        if video is None
        else {"codec": video.codec, "width": video.width, "height": video.height, "fps": video.fps},
        "audio": None
        if audio is None
        else {"codec": audio.codec, "sample_rate": audio.sample_rate, "channels": audio.channels},
        "frames": frames,
        "audio_tokens": audio_tokens,
        "warnings": warnings,
    }


def _summary(path: str, policy: Any, result: dict[str, Any]) -> str:
    lines = [display(path)]
    dur = result["duration_s"]
    lines.append(f"  duration   {dur:.3f} s" if dur is not None else "  duration   unknown")
    v = result["video"]
    if v:
        fps = f"{v['fps']:.3f} fps" if v["fps"] else "unknown fps"
        lines.append(f"  video      {v['codec']} {v['width']}x{v['height']} {fps}")
    else:
        lines.append("  video      none")
    a = result["audio"]
    if a:
        lines.append(f"  audio      {a['codec']} {a['sample_rate']} Hz {a['channels']} ch -> 16 kHz mono")
    else:
        lines.append("  audio      none")
    times = [f["t"] for f in result["frames"]]
    shown = ", ".join(f"{t:.2f}" for t in times[:12]) + (", ..." if len(times) > 12 else "")
    lines.append(f"  frames     {len(times)} at {policy.describe()}" + (f": {shown} s" if times else ""))
    tokens = result["audio_tokens"]
    lines.append(f"  audio      {tokens} tokens of 40 ms ({tokens * 0.04:.2f} s)")
    for w in result["warnings"]:
        lines.append(f"  warning    {w}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    policy = _policy(args)
    try:
        result = probe_file(args.file, policy, args.dump)
    except OSError as exc:
        raise MediaError(f"{args.file}: {exc.strerror or exc}") from exc
    if args.json:
        print(jsonio.dumps(result))
    else:
        print(_summary(args.file, policy, result))
    sys.stdout.flush()
    return 0
