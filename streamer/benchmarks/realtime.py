"""``streamer bench realtime``: what speaking OpenAI's Realtime protocol costs over /v1/live, same work, same run.

One scripted live session is sent through both endpoints: ``--seconds`` of media (per second
ten 100 ms chunks of 24 kHz 16-bit PCM and one 640×360 JPEG) and ``--questions`` questions
spread over it, each answered with ``--answer-tokens`` tokens by the fake engine (scripted, no
model: what is left is the serving stack's own cost). Each endpoint gets the work in its
native form:

* ``live`` — ``/v1/live``: binary media messages (24-byte header + payload), JSON ``ask``;
* ``realtime`` — ``/v1/realtime``: base64 ``input_audio_buffer.append`` (a ``commit`` per
  second), ``streamer.input_frame.append`` for the frames, ``conversation.item.create`` +
  ``response.create`` for a question, and the OpenAI event sequence back.

Two measurements, live and realtime alternating ``--repeats`` times:

* **core** (no socket, the engine's prefill paused between questions so that its thread does
  not compete for the CPU): server time per step of the script, from wire bytes to the engine
  call returning (live: ``decode_client`` + ``LiveProtocol.receive``; realtime:
  ``RealtimeProtocol.receive`` of each of the step's events), median µs: a 100 ms audio chunk,
  the per-second commit (realtime only: appends only buffer, the commit decodes), a frame, a
  question (live ``ask``; realtime ``conversation.item.create`` + ``response.create``), and one
  second of audio all told (ten chunks, plus the commit). "outside core" is the part of a step
  spent outside the shared live core's media handling (its ``ingest_done`` observer hook times
  that): wire decoding and, for realtime, JSON, base64 and the translation — the per-event
  overhead proper, free of the decode time that varies with the machine's load;
* **websocket**: a real WebSocket to an in-process ``streamer serve`` (uvicorn, same process:
  client and server share the CPU) — wall time of the whole session, events each way, the
  question → done latency, and the overhead per client event ``(realtime − live) / events``.

A benchmark: nothing asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import time
from typing import Any

from streamer import jsonio
from streamer.cli.args import number

__all__ = ["add_arguments", "run"]

_RATE = 24_000  # Hz of the PCM sent (OpenAI's rate), resampled to 16 kHz by both endpoints
_CHUNK_S = 0.1  # seconds per audio message


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seconds", type=number(int, 2, 3600), default=30, help="media seconds (default: 30)"
    )
    parser.add_argument("--questions", type=number(int, 1, 100), default=5, help="questions (default: 5)")
    parser.add_argument("--answer-tokens", type=number(int, 1, 1024), default=32,
                        help="tokens per answer (default: 32)")  # fmt: skip
    parser.add_argument("--repeats", type=number(int, 1, 20), default=3, help="alternating runs (default: 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


# ---- the work ----------------------------------------------------------------------------------


def _jpeg() -> bytes:
    """A 640×360 JPEG with smooth content, as a camera would send."""
    import numpy as np

    from streamer.media.image import encode_jpeg

    y, x = np.mgrid[0:360, 0:640]
    rgb = np.stack([(x * 255 // 639), (y * 255 // 359), ((x + y) % 256)], axis=-1).astype(np.uint8)
    rgb[100:200, 200:400] = (200, 40, 40)
    return encode_jpeg(rgb)


def _pcm() -> bytes:
    import numpy as np

    t = np.arange(int(_RATE * _CHUNK_S)) / _RATE
    return (np.sin(2 * np.pi * 220 * t) * 6000).astype("<i2").tobytes()


def _script(seconds: int, questions: int) -> list[tuple[str, float]]:
    """(kind, t_s) in sending order: audio, frame, commit, question."""
    ask_at = {round((i + 1) * seconds / questions) for i in range(questions)}
    out: list[tuple[str, float]] = []
    for second in range(seconds):
        for k in range(round(1 / _CHUNK_S)):
            out.append(("audio", second + k * _CHUNK_S))
        out.append(("commit", float(second)))
        out.append(("frame", second + 0.5))
        if second + 1 in ask_at:
            out.append(("question", float(second + 1)))
    return out


def _live_wire(
    kind: str, t_s: float, seq: int, jpeg: bytes, pcm: bytes, tokens: int
) -> tuple[Any, ...] | None:
    """The /v1/live client message for one step: (text, binary), or None (live has no commit)."""
    from streamer.serve.messages import Audio, Frame
    from streamer.serve.ws import encode_media

    if kind == "audio":
        return None, encode_media(Audio(pcm, "s16le", _RATE, 1, t_s, seq))
    if kind == "frame":
        return None, encode_media(Frame(jpeg, "jpeg", None, None, t_s, seq))
    if kind == "question":
        ask = {
            "type": "ask",
            "seq": seq,
            "question": "What happened?",
            "sampling": {"max_new_tokens": tokens},
        }
        return jsonio.dumps(ask), None
    return None


def _realtime_wire(kind: str, t_s: float, jpeg_b64: str, pcm_b64: str, tokens: int) -> list[str]:
    """The /v1/realtime client events for one step."""
    if kind == "audio":
        return [jsonio.dumps({"type": "input_audio_buffer.append", "audio": pcm_b64})]
    if kind == "commit":
        return [jsonio.dumps({"type": "input_audio_buffer.commit"})]
    if kind == "frame":
        return [jsonio.dumps({"type": "streamer.input_frame.append", "image": jpeg_b64, "t_s": t_s})]
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "What happened?"}]}
    return [
        jsonio.dumps({"type": "conversation.item.create", "item": item}),
        jsonio.dumps({"type": "response.create", "response": {"max_output_tokens": tokens}}),
    ]


class _Work:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.jpeg, self.pcm = _jpeg(), _pcm()
        self.jpeg_b64 = base64.b64encode(self.jpeg).decode()
        self.pcm_b64 = base64.b64encode(self.pcm).decode()
        self.script = _script(args.seconds, args.questions)

    def engine(self) -> Any:
        from streamer.engine.fake import FakeEngine

        engine = FakeEngine(" ".join(["tok"] * self.args.answer_tokens))
        engine.start()
        return engine


# ---- core: the protocol objects, no socket -----------------------------------------------------


def _ingest_recorder() -> Any:
    """A LiveObserver that adds up the live core's own time per frame / audio message."""
    from streamer.serve.hub import LiveObserver

    class Ingest(LiveObserver):
        seconds = 0.0

        def ingest_done(self, kind: str, seconds: float) -> None:
            self.seconds += seconds

    return Ingest()


async def _core(work: _Work, engine: Any, endpoint: str) -> dict[str, list[float]]:
    """Per script step: ``kind`` = the endpoint's time, ``kind:own`` = the part outside the shared core."""
    from streamer.engine.aio import AsyncEngine
    from streamer.serve.hub import LiveHub
    from streamer.serve.limits import ServeLimits

    ingest = _ingest_recorder()
    hub = LiveHub(AsyncEngine(engine), ServeLimits(stats_interval_s=0), observer=ingest)
    step, finish, close, live = await (
        _live_steps(hub, work) if endpoint == "live" else _realtime_steps(hub, work)
    )
    times: dict[str, list[float]] = {}
    session = None
    for kind, t_s in work.script:
        before = ingest.seconds
        spent = await step(kind, t_s)
        if spent is None:
            continue
        times.setdefault(kind, []).append(spent)
        if kind in ("audio", "commit", "frame"):
            times.setdefault(f"{kind}:own", []).append(spent - (ingest.seconds - before))
        if session is None and live.session is not None:  # (realtime opens it at the first input)
            session = live.session.session
            session.pause_prefill()  # the engine thread stays off the CPU between questions
        if kind == "question":
            assert session is not None
            session.resume_prefill()
            await finish()
            session.pause_prefill()
    await close()
    return times


async def _live_steps(hub: Any, work: _Work) -> tuple[Any, Any, Any, Any]:
    from streamer.serve.messages import AnswerDone, Setup
    from streamer.serve.ws import decode_client

    proto = hub.connect("bench")
    await proto.receive(Setup(seq=0))
    limit, seq = hub.limits.max_message_bytes, [1]

    async def step(kind: str, t_s: float) -> float | None:
        wire = _live_wire(kind, t_s, seq[0], work.jpeg, work.pcm, work.args.answer_tokens)
        if wire is None:
            return None
        seq[0] += 1
        started = time.perf_counter()
        await proto.receive(decode_client(wire[0], wire[1], limit))
        spent = time.perf_counter() - started
        if kind != "question":
            proto.pending()
        return spent

    async def finish() -> None:
        while not any(isinstance(m, AnswerDone) for m in proto.pending()):
            await asyncio.sleep(0.0005)

    return step, finish, proto.connection_lost, proto


async def _realtime_steps(hub: Any, work: _Work) -> tuple[Any, Any, Any, Any]:
    from streamer.serve.realtime import RealtimeProtocol

    proto = RealtimeProtocol(hub, "bench")
    await proto.start()
    await proto.receive(jsonio.dumps({"type": "session.update", "session": {"type": "realtime"}}))

    async def step(kind: str, t_s: float) -> float | None:
        spent = 0.0
        for text in _realtime_wire(kind, t_s, work.jpeg_b64, work.pcm_b64, work.args.answer_tokens):
            started = time.perf_counter()
            await proto.receive(text)
            spent += time.perf_counter() - started
        if kind != "question":
            errors = [e for e in proto.pending() if e["type"] == "error"]
            if errors:
                raise RuntimeError(f"realtime refused the bench's input: {errors[0]['error']}")
        return spent

    async def finish() -> None:
        while not any(e["type"] == "response.done" for e in proto.pending()):
            await asyncio.sleep(0.0005)

    return step, finish, proto.connection_lost, proto.live


# ---- websocket: a real server --------------------------------------------------------------------


async def _ws_live(url: str, work: _Work) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    sent = received = 0
    latencies: list[float] = []
    async with connect(url + "/v1/live", max_size=None) as ws:
        await ws.send(jsonio.dumps({"type": "setup", "seq": 0}))
        await ws.recv()
        started = time.perf_counter()
        seq = 1
        for kind, t_s in work.script:
            wire = _live_wire(kind, t_s, seq, work.jpeg, work.pcm, work.args.answer_tokens)
            if wire is None:
                continue
            seq += 1
            await ws.send(wire[0] if wire[0] is not None else wire[1])
            sent += 1
            if kind == "question":
                asked = time.perf_counter()
                while True:
                    received += 1
                    if jsonio.loads(await ws.recv())["type"] == "answer_done":
                        break
                latencies.append(time.perf_counter() - asked)
        wall = time.perf_counter() - started
    return {"wall_s": wall, "sent": sent, "received": received, "latencies": latencies}


async def _ws_realtime(url: str, work: _Work) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    sent = received = 0
    latencies: list[float] = []
    async with connect(url + "/v1/realtime?model=bench", max_size=None) as ws:
        await ws.recv()  # session.created
        await ws.send(jsonio.dumps({"type": "session.update", "session": {"type": "realtime"}}))
        await ws.recv()
        started = time.perf_counter()
        for kind, t_s in work.script:
            asked = time.perf_counter()
            for text in _realtime_wire(kind, t_s, work.jpeg_b64, work.pcm_b64, work.args.answer_tokens):
                await ws.send(text)
                sent += 1
            if kind == "question":
                while True:
                    received += 1
                    if jsonio.loads(await ws.recv())["type"] == "response.done":
                        break
                latencies.append(time.perf_counter() - asked)
        wall = time.perf_counter() - started
    return {"wall_s": wall, "sent": sent, "received": received, "latencies": latencies}


def _serve(engine: Any) -> tuple[str, Any]:
    """``streamer.serve.server.serve`` on a loopback port in a thread; (base URL, stopper)."""
    import threading

    from streamer.serve.options import ServeOptions
    from streamer.serve.server import serve

    ready = threading.Event()
    box: dict[str, Any] = {}
    loop = asyncio.new_event_loop()

    async def main() -> None:
        box["stop"] = asyncio.Event()

        def on_ready(listening: Any) -> None:
            box["port"] = listening.http_port
            ready.set()

        await serve(
            engine, ServeOptions(http_port=0, grpc_port=None, log_level="warning"), on_ready, box["stop"]
        )

    thread = threading.Thread(
        target=lambda: loop.run_until_complete(main()), name="bench-server", daemon=True
    )
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("the bench server did not start")

    def stop() -> None:
        loop.call_soon_threadsafe(box["stop"].set)
        thread.join(30)
        loop.close()

    return f"ws://127.0.0.1:{box['port']}", stop


# ---- report ------------------------------------------------------------------------------------


def _median_us(values: list[float]) -> float:
    return statistics.median(values) * 1e6 if values else float("nan")


def run(args: argparse.Namespace) -> int:
    work = _Work(args)
    core: dict[str, dict[str, list[float]]] = {"live": {}, "realtime": {}}
    sockets: dict[str, list[dict[str, Any]]] = {"live": [], "realtime": []}
    engine = work.engine()
    try:
        for _ in range(args.repeats):
            for name in ("live", "realtime"):
                for kind, values in asyncio.run(_core(work, engine, name)).items():
                    core[name].setdefault(kind, []).extend(values)
    finally:
        engine.stop()
    engine = work.engine()
    url, stop = _serve(engine)
    try:
        for _ in range(args.repeats):
            sockets["live"].append(asyncio.run(_ws_live(url, work)))
            sockets["realtime"].append(asyncio.run(_ws_realtime(url, work)))
    finally:
        stop()
        engine.stop()
    result = _summary(args, work, core, sockets)
    print(jsonio.dumps(result, indent=2) if args.json else _table(result))
    return 0


def _summary(args: argparse.Namespace, work: _Work, core: dict, sockets: dict) -> dict[str, Any]:
    kinds = ("audio", "audio:own", "commit", "commit:own", "frame", "frame:own", "question")
    per_kind = {
        kind: {name: _median_us(core[name].get(kind, [])) for name in ("live", "realtime")} for kind in kinds
    }
    chunks = round(1 / _CHUNK_S)
    per_kind["audio second"] = {
        "live": chunks * per_kind["audio"]["live"],
        "realtime": chunks * per_kind["audio"]["realtime"] + per_kind["commit"]["realtime"],
    }
    ws: dict[str, Any] = {}
    for name, runs in sockets.items():
        ws[name] = {
            "wall_s": statistics.median(r["wall_s"] for r in runs),
            "sent": runs[0]["sent"],
            "received": runs[0]["received"],
            "question_to_done_ms": statistics.median(x for r in runs for x in r["latencies"]) * 1e3,
        }
    events = ws["realtime"]["sent"]
    ws["overhead_per_client_event_us"] = (ws["realtime"]["wall_s"] - ws["live"]["wall_s"]) / events * 1e6
    return {
        "seconds": args.seconds,
        "questions": args.questions,
        "answer_tokens": args.answer_tokens,
        "repeats": args.repeats,
        "jpeg_bytes": len(work.jpeg),
        "pcm_chunk_bytes": len(work.pcm),
        "core_median_us": per_kind,
        "websocket": ws,
    }


def _table(r: dict[str, Any]) -> str:
    lines = [
        f"{r['seconds']} s of media (10 x 100 ms PCM @ 24 kHz + one {r['jpeg_bytes']} B JPEG per second), "
        f"{r['questions']} questions x {r['answer_tokens']} tokens, fake engine, {r['repeats']} alternating runs",
        "",
        "core (no socket): server time per step, median",
        f"{'step':<14} {'/v1/live':>12} {'/v1/realtime':>14} {'overhead':>10}",
    ]
    for kind, v in r["core_median_us"].items():
        live, rt = v["live"], v["realtime"]
        kind = {"audio": "audio 100 ms", "audio:own": "  outside core", "commit:own": "  outside core",
                "frame:own": "  outside core"}.get(kind, kind)  # fmt: skip
        live_s = "-" if live != live else f"{live:.0f} us"
        over = "-" if live != live else f"{rt - live:+.0f} us"
        lines.append(f"{kind:<14} {live_s:>12} {rt:>11.0f} us {over:>10}")
    ws = r["websocket"]
    lines += [
        "",
        "websocket (in-process server), median of runs",
        f"{'':<22} {'/v1/live':>12} {'/v1/realtime':>14}",
        f"{'session wall time':<22} {ws['live']['wall_s']:>10.3f} s {ws['realtime']['wall_s']:>12.3f} s",
        f"{'client events sent':<22} {ws['live']['sent']:>12} {ws['realtime']['sent']:>14}",
        f"{'server events read':<22} {ws['live']['received']:>12} {ws['realtime']['received']:>14}",
        f"{'question -> done':<22} {ws['live']['question_to_done_ms']:>9.1f} ms "
        f"{ws['realtime']['question_to_done_ms']:>11.1f} ms",
        f"overhead per /v1/realtime client event: {ws['overhead_per_client_event_us']:+.0f} us",
    ]
    return "\n".join(lines)
