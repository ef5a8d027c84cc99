"""Stream a media file to ``streamer serve`` over the WebSocket protocol in real time, ask, print answers.

    streamer serve &                                    # in another terminal (or --fake)
    python examples/make_demo_recording.py out/demo.mp4
    python examples/live_ws_client.py out/demo.mp4 --ask "10:What is on the slide?" --ask "30:Who spoke?"

Frames are sent as JPEG at ``--fps``, audio as 100 ms s16le chunks at 16 kHz, both with their
timestamps in the file, paced to the wall clock (``--speed 2`` plays twice as fast). Each
``--ask T:QUESTION`` is asked when the stream reaches T seconds; the answer streams to stdout.
At the end, the session's stats are printed. Needs ``pip install websockets`` (in the serve extra).
The protocol: docs/protocol.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake

from streamer import jsonio
from streamer.errors import StreamerError
from streamer.media import SamplingPolicy, open_media
from streamer.media.image import encode_jpeg
from streamer.media.types import AudioFrames, VideoFrame
from streamer.serve.messages import Audio, Frame
from streamer.serve.ws import encode_media

CHUNK_SAMPLES = 1600  # 100 ms at 16 kHz


def _questions(values: list[str]) -> list[tuple[float, str]]:
    out = []
    for value in values:
        at, sep, question = value.partition(":")
        try:
            out.append((float(at), question.strip()))
        except ValueError:
            sep = ""
        if not sep or not question.strip():
            raise SystemExit(f"--ask wants SECONDS:QUESTION, got {value!r}")
    return sorted(out)


def _check_media(path: str) -> None:
    """Exit with one line unless ``path`` is a recording streamer can read."""
    try:
        with open_media(path, SamplingPolicy.fixed_rate(1.0)):
            pass
    except StreamerError as exc:
        raise SystemExit(f"live_ws_client: error: {exc}") from None


async def main(args: argparse.Namespace) -> int:
    questions = _questions(args.ask)
    _check_media(args.file)  # before connecting: a typo is one line, not a traceback and a 1011 close
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    try:
        ws = await connect(args.url, additional_headers=headers, max_size=None, open_timeout=10)
    except (OSError, asyncio.TimeoutError, InvalidHandshake) as exc:
        raise SystemExit(f"live_ws_client: error: cannot connect to {args.url}: {exc}") from None
    async with ws:
        return await _stream(args, ws, questions)


async def _stream(args: argparse.Namespace, ws: ClientConnection, questions: list[tuple[float, str]]) -> int:
    seq = 0

    async def send_json(message: dict) -> None:
        nonlocal seq
        seq += 1
        await ws.send(jsonio.dumps({"seq": seq, **message}))

    await ws.send(jsonio.dumps({"type": "setup", "seq": 0, "fps": args.fps, "system_prompt": args.system,
                                "sampling": {"max_new_tokens": args.max_new_tokens}}))  # fmt: skip
    ready = jsonio.loads(await ws.recv())
    if ready["type"] != "ready":
        print(f"refused: {ready.get('code')}: {ready.get('message')}", file=sys.stderr)
        return 1
    print(f"session {ready['session_id']} (context budget {ready['max_context_tokens']} tokens)")
    pending: dict[str, float] = {}
    final_stats: dict = {}
    done = asyncio.Event()

    async def reader() -> None:
        async for raw in ws:
            m = jsonio.loads(raw)
            if m["type"] == "answer_delta":
                print(m["text"], end="", flush=True)
            elif m["type"] == "answer_done":
                asked = pending.pop(m["request_id"], None)
                took = f", {time.monotonic() - asked:.2f} s" if asked else ""
                ttft = f"TTFT {m['ttft_s'] * 1000:.0f} ms" if m["ttft_s"] is not None else "no tokens"
                print(f"\n  [{m['finish_reason']}, {m['tokens']} tokens, {ttft}{took}]")
                if not pending and done.is_set():
                    return
            elif m["type"] == "error":
                print(f"\n  error {m['code']} (seq {m['seq']}): {m['message']}", file=sys.stderr)
            elif m["type"] == "go_away":
                print(f"\n  server going away in {m['seconds_left']:.0f} s: {m['reason']}", file=sys.stderr)
            elif m["type"] == "stats":
                final_stats.update(m)

    read = asyncio.create_task(reader())
    start = time.monotonic()
    pcm = np.zeros(0, dtype=np.float32)
    pcm_t = 0.0
    with open_media(args.file, SamplingPolicy.fixed_rate(args.fps)) as media:
        for item in media.items():
            t = item.t_s
            while questions and questions[0][0] <= t:
                at, question = questions.pop(0)
                rid = f"q{seq + 1}"
                pending[rid] = time.monotonic()
                print(f"\n[{at:6.1f} s] {question}\n  ", end="", flush=True)
                await send_json({"type": "ask", "question": question, "request_id": rid})
            delay = start + t / args.speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if isinstance(item, VideoFrame):
                seq += 1
                await ws.send(encode_media(Frame(encode_jpeg(item.image), "jpeg", None, None, t, seq)))
            elif isinstance(item, AudioFrames):
                if not len(pcm):
                    pcm_t = t
                pcm = np.concatenate([pcm, item.waveform()])
                while len(pcm) >= CHUNK_SAMPLES:
                    chunk, pcm = pcm[:CHUNK_SAMPLES], pcm[CHUNK_SAMPLES:]
                    seq += 1
                    data = (np.clip(chunk, -1, 1) * 32767).astype("<i2").tobytes()
                    await ws.send(encode_media(Audio(data, "s16le", 16_000, 1, pcm_t, seq)))
                    pcm_t += CHUNK_SAMPLES / 16_000
    for at, question in questions:  # questions after the end of the file
        rid = f"q{seq + 1}"
        pending[rid] = time.monotonic()
        print(f"\n[{at:6.1f} s] {question}\n  ", end="", flush=True)
        await send_json({"type": "ask", "question": question, "request_id": rid})
    done.set()
    if pending:
        await asyncio.wait([read], timeout=args.answer_timeout)
    await send_json({"type": "close"})
    await asyncio.wait([read], timeout=10)
    s = final_stats
    if s:
        print(
            f"\nstats: {s['frames']} frames and {s['audio_s']:.1f} s of audio in a context of "
            f"{s['context_tokens']}/{s['max_context_tokens']} tokens; {s['dropped_frames']} frames dropped, "
            f"{s['evictions']} evictions"
        )
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", help="a video and/or audio file")
    parser.add_argument("--url", default="ws://127.0.0.1:8000/v1/live")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--ask", action="append", default=[], metavar="SECONDS:QUESTION")
    parser.add_argument("--fps", type=float, default=1.0, help="frames sent per second of media (default 1)")
    parser.add_argument("--speed", type=float, default=1.0, help="playback speed (default 1 = real time)")
    parser.add_argument("--system", default=None, help="system prompt")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument(
        "--answer-timeout", type=float, default=60.0, help="seconds to wait for the last answers"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
