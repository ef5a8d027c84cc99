"""The official ``openai`` SDK's realtime client against a real ``streamer serve`` (bundled model) on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import os

import pytest

from .conftest import jpeg_bytes, pcm_s16, run
from .server_proc import serve_process

openai = pytest.importorskip("openai")
pytest.importorskip("websockets")

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

KEY = "sekrit-test-key"


@pytest.fixture(scope="module")
def server(bundled_dir):
    env = {"STREAMER_HOME": os.environ["STREAMER_HOME"]}
    with serve_process("--max-new-tokens", "256", env=env) as srv:
        yield srv


@pytest.fixture(scope="module")
def keyed_server(bundled_dir):
    env = {"STREAMER_HOME": os.environ["STREAMER_HOME"]}
    with serve_process("--api-key", KEY, env=env) as srv:
        yield srv


def _client(srv, key: str = "unused", base_url: bool = False):
    if base_url:  # the SDK derives ws://HOST:PORT/v1/realtime from the HTTP base URL
        return openai.AsyncOpenAI(api_key=key, base_url=f"{srv.http}/v1")
    return openai.AsyncOpenAI(api_key=key, websocket_base_url=f"ws://127.0.0.1:{srv.port}/v1")


async def _until(conn, kind: str, timeout: float = 60.0) -> list:
    out: list = []

    async def go() -> None:
        async for ev in conn:
            out.append(ev)
            if ev.type == kind:
                return

    await asyncio.wait_for(go(), timeout)
    return out


async def _text_session(conn, **streamer) -> None:
    session = {
        "type": "realtime",
        "output_modalities": ["text"],
        "instructions": "You are a helpful assistant.",
        "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": None}},
        "streamer": {"stats": True, **streamer},
    }
    await conn.session.update(session=session)


def _question(text: str, *extra: dict) -> dict:
    return {"type": "message", "role": "user", "content": [*extra, {"type": "input_text", "text": text}]}


def test_text_question_streams_deltas_and_done(server):
    async def body():
        async with _client(server, base_url=True).realtime.connect(model="gemma-4") as conn:
            created = await conn.recv()
            assert created.type == "session.created" and created.session.model == "gemma-4"
            await _text_session(conn)
            assert (await _until(conn, "session.updated"))[-1].session.instructions.startswith("You are")
            await conn.conversation.item.create(item=_question("What is streaming inference?"))
            await conn.response.create(response={"max_output_tokens": 12})
            events = await _until(conn, "response.done")
            types = [e.type for e in events]
            assert types.index("response.created") < types.index("response.output_text.delta")
            deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
            done = events[-1].response
            assert done.status in ("completed", "incomplete")
            assert done.usage.output_tokens == 12 or done.status == "completed"
            assert done.usage.input_tokens > 0
            assert done.output[0].content[0].text == deltas and deltas
            text_done = next(e for e in events if e.type == "response.output_text.done")
            assert text_done.text == deltas

    run(body(), 120)


def test_image_item_then_question(server):
    async def body():
        async with _client(server).realtime.connect(model="gemma-4") as conn:
            await _text_session(conn)
            url = "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(160, 120)).decode()
            await conn.conversation.item.create(
                item=_question("What is in the picture?", {"type": "input_image", "image_url": url})
            )
            added = await _until(conn, "conversation.item.done")
            assert added[-1].item.content[0].type == "input_image"
            await conn.response.create(response={"max_output_tokens": 8})
            done = (await _until(conn, "response.done"))[-1].response
            assert done.status in ("completed", "incomplete") and done.usage.output_tokens > 0
            stats = (await _until(conn, "streamer.session.stats"))[-1]
            assert stats.model_extra["stats"]["frames"] == 1

    run(body(), 120)


def test_appended_audio_then_question(server):
    async def body():
        async with _client(server).realtime.connect(model="gemma-4") as conn:
            await _text_session(conn)
            pcm = pcm_s16(1.0, rate=24_000)
            for i in range(0, len(pcm), 4800):  # 100 ms chunks, as a microphone sends them
                await conn.input_audio_buffer.append(audio=base64.b64encode(pcm[i : i + 4800]).decode())
            await conn.input_audio_buffer.commit()
            events = await _until(conn, "conversation.item.done")
            committed = next(e for e in events if e.type == "input_audio_buffer.committed")
            assert events[-1].item.id == committed.item_id
            assert events[-1].item.content[0].type == "input_audio"
            await conn.conversation.item.create(item=_question("What did you hear?"))
            await conn.response.create(response={"max_output_tokens": 8})
            done = (await _until(conn, "response.done"))[-1].response
            assert done.status in ("completed", "incomplete")
            stats = (await _until(conn, "streamer.session.stats"))[-1].model_extra["stats"]
            assert stats["audio_s"] == pytest.approx(1.0, abs=0.1)

    run(body(), 120)


def test_response_cancel_mid_answer(server):
    async def body():
        async with _client(server).realtime.connect(model="gemma-4") as conn:
            await _text_session(conn, temperature=1.0, seed=3)  # sampled: no early stop token
            await conn.conversation.item.create(item=_question("Tell me a long story."))
            await conn.response.create(response={"max_output_tokens": 256})
            created = (await _until(conn, "response.created"))[-1].response
            await _until(conn, "response.output_text.delta")
            await conn.response.cancel(response_id=created.id)
            done = (await _until(conn, "response.done"))[-1].response
            assert done.id == created.id and done.status == "cancelled"
            assert done.status_details.reason == "client_cancelled"
            assert 0 < done.usage.output_tokens < 256
            await conn.response.create(response={"max_output_tokens": 4})  # the session goes on
            assert (await _until(conn, "response.done"))[-1].response.status in ("completed", "incomplete")

    run(body(), 120)


def test_unsupported_requests_get_error_events(server):
    async def body():
        async with _client(server).realtime.connect(model="gemma-4") as conn:
            await conn.session.update(session={"type": "realtime", "output_modalities": ["audio"]})
            error = (await _until(conn, "error"))[-1].error
            assert (error.type, error.code, error.param) == (
                "invalid_request_error",
                "unsupported_parameter",
                "session.output_modalities",
            )
            turn = {"type": "server_vad", "silence_duration_ms": 500}
            await conn.session.update(
                session={"type": "realtime", "audio": {"input": {"turn_detection": turn}}}
            )
            assert (await _until(conn, "error"))[-1].error.param == "session.audio.input.turn_detection"
            tool = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}
            await conn.response.create(response={"tools": [tool]})
            assert (await _until(conn, "error"))[-1].error.param == "response.tools"
            await conn.send({"type": "conversation.item.delete", "item_id": "item_x", "event_id": "evt_del"})
            error = (await _until(conn, "error"))[-1].error
            assert (error.code, error.event_id) == ("unsupported_event", "evt_del")
            await conn.response.create(response={"max_output_tokens": 4})  # still serving
            assert (await _until(conn, "response.done"))[-1].response.status in ("completed", "incomplete")

    run(body(), 120)


def test_auth_on(keyed_server):
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    async def body():
        with pytest.raises(InvalidStatus) as info:
            async with _client(keyed_server, key="wrong").realtime.connect(model="gemma-4") as conn:
                await conn.recv()
        assert info.value.response.status_code == 401
        async with _client(keyed_server, key=KEY).realtime.connect(model="gemma-4") as conn:
            assert (await conn.recv()).type == "session.created"
            await conn.conversation.item.create(item=_question("Hello?"))
            await conn.response.create(response={"max_output_tokens": 4})
            assert (await _until(conn, "response.done"))[-1].response.status in ("completed", "incomplete")
        # a browser cannot set headers: the key travels as a subprotocol, answered with "realtime"
        url = f"ws://127.0.0.1:{keyed_server.port}/v1/realtime?model=gemma-4"
        async with connect(url, subprotocols=["realtime", f"openai-insecure-api-key.{KEY}"]) as ws:
            assert ws.subprotocol == "realtime"
            assert json.loads(await ws.recv())["type"] == "session.created"
        with pytest.raises(InvalidStatus):
            async with connect(url, subprotocols=["realtime"]):
                pass

    run(body(), 120)


def test_auth_off_takes_any_key_or_none(server):
    from websockets.asyncio.client import connect

    async def body():
        async with _client(server, key="anything").realtime.connect(model="gemma-4") as conn:
            assert (await conn.recv()).type == "session.created"
        async with connect(f"ws://127.0.0.1:{server.port}/v1/realtime") as ws:  # no key at all
            assert json.loads(await ws.recv())["type"] == "session.created"

    run(body(), 60)
