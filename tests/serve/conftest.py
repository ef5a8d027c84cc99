"""Helpers for the serving tests: a started fake engine, a hub, JPEG bytes, PCM bytes."""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import numpy as np
import pytest

from streamer.engine.aio import AsyncEngine
from streamer.engine.fake import FakeEngine
from streamer.serve.hub import LiveHub
from streamer.serve.limits import ServeLimits
from streamer.serve.live import LiveProtocol
from streamer.serve.messages import AnswerDone, ServerMessage


def run(coro: Awaitable[Any], timeout: float = 20.0) -> Any:
    """Run one async test body, bounded in time."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def jpeg_bytes(width: int = 64, height: int = 48, seed: int = 0, fmt: str = "JPEG") -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def pcm_s16(seconds: float, rate: int = 16_000, channels: int = 1, hz: float = 440.0) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    mono = (np.sin(2 * np.pi * hz * t) * 8000).astype("<i2")
    return np.repeat(mono[:, None], channels, axis=1).tobytes()


async def collect(proto: LiveProtocol, until: Callable[[ServerMessage], bool], timeout: float = 5.0) -> list:
    """Messages from ``proto`` until one satisfies ``until`` (included) or the stream ends."""
    out: list[ServerMessage] = []

    async def go() -> None:
        while (message := await proto.next_message()) is not None:
            out.append(message)
            if until(message):
                return

    await asyncio.wait_for(go(), timeout)
    return out


def answer_done(message: ServerMessage) -> bool:
    return isinstance(message, AnswerDone)


@pytest.fixture
def fake() -> Iterator[FakeEngine]:
    engine = FakeEngine("one two three four five six", step_delay_s=0.002)
    engine.start()
    yield engine
    engine.stop()


def make_hub(engine: FakeEngine, **limits: Any) -> LiveHub:
    return LiveHub(AsyncEngine(engine), ServeLimits(**limits))


@contextlib.contextmanager
def running_server(engine: Any, **options: Any) -> Iterator[Any]:
    """``streamer.serve.server.serve`` on a loopback port in a thread; yields its Listening."""
    from streamer.serve.options import ServeOptions
    from streamer.serve.server import serve

    options.setdefault("grpc_port", None)
    options.setdefault("log_level", "warning")
    ready = threading.Event()
    box: dict[str, Any] = {}
    loop = asyncio.new_event_loop()

    async def main() -> None:
        box["stop"] = asyncio.Event()

        def on_ready(listening: Any) -> None:
            box["listening"] = listening
            ready.set()

        await serve(engine, ServeOptions(http_port=0, **options), on_ready=on_ready, stop=box["stop"])

    def target() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # reported to the test
            box["error"] = exc
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=target, name="test-server", daemon=True)
    thread.start()
    assert ready.wait(20), "the server did not start"
    if "error" in box:
        raise box["error"]
    try:
        yield box["listening"]
    finally:
        if thread.is_alive():
            loop.call_soon_threadsafe(box["stop"].set)
        thread.join(30)
        assert not thread.is_alive(), "the server did not stop"
