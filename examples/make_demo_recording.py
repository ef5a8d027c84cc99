"""Write the demo recording `make run` summarizes: a 1-minute "shapes and beeps" timeline.

Coloured shapes appear one after another, each with its beeps, between blank gaps (see
streamer/demo/scene.py). The recording is drawn from a fixed seed that the bundled demo model
never saw in training, so `streamer summarize` on it shows the model perceiving, not recalling.

Usage: python examples/make_demo_recording.py OUT.mp4 [--seed N] [--print-events]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from streamer.demo.encode import write_recording
from streamer.demo.scene import sample_timeline
from streamer.demo.tasks import event_line, first_seen
from streamer.demo.train import DEMO_RECORDING_SEED


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=DEMO_RECORDING_SEED)
    parser.add_argument("--print-events", action="store_true", help="print what the recording shows")
    args = parser.parse_args()
    rec = sample_timeline(args.seed, min_s=60.0, max_s=60.0)
    # MP4 (H.264 + AAC) so that any player opens it
    rec = dataclasses.replace(
        rec, container="mp4", video_codec="libx264", audio_codec="aac", sample_rate=48_000
    )
    if args.print_events:
        for a in rec.appearances:
            seen = first_seen(rec, a)
            print(event_line(a, seen if seen is not None else a.t0_s))
    if args.out.is_file():
        print(f"{args.out} exists; keeping it")
        return
    write_recording(rec, args.out)
    print(
        f"wrote {args.out} ({rec.duration_s:g} s, {rec.width}x{rec.height} @ {rec.fps} fps, "
        f"{len(rec.appearances)} shapes)"
    )


if __name__ == "__main__":
    main()
