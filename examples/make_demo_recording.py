"""Write a short synthetic meeting recording for `make run` (H.264 + AAC MP4).

Usage: python examples/make_demo_recording.py OUT.mp4 [--minutes M] [--size WxH] [--fps F]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from streamer.media.synth import write_synthetic_recording


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--size", default="640x360", help="WIDTHxHEIGHT")
    parser.add_argument("--fps", type=int, default=10)
    args = parser.parse_args()
    if args.out.is_file():
        print(f"{args.out} exists; keeping it")
        return
    width, height = (int(v) for v in args.size.lower().split("x"))
    write_synthetic_recording(args.out, minutes=args.minutes, size=(width, height), fps=args.fps)
    print(f"wrote {args.out} ({args.minutes:g} min, {width}x{height} @ {args.fps} fps)")


if __name__ == "__main__":
    main()
