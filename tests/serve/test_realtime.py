"""The OpenAI Realtime protocol core on the fake engine: every client and server event of docs/realtime.md."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest

from streamer.engine.fake import FakeEngine
from streamer.serve.live import CloseReason
from streamer.serve.realtime import RealtimeProtocol
from streamer.serve.realtime_session import DEFAULT_QUESTION

from .conftest import jpeg_bytes, make_hub, pcm_s16, run

pytestmark = pytest.mark.timeout(60)


class Conn:
    """A test client: sends event dicts, collects server events."""

    def __init__(self, proto: RealtimeProtocol):
        self.proto = proto
        self.n = 0

    async def send(self, kind: str, **fields) -> str:
        self.n += 1
        event_id = f"evt_{self.n}"
        await self.proto.receive(json.dumps({"type": kind, "event_id": event_id, **fields}))
        return event_id

    async def until(self, kind: str, timeout: float = 5.0) -> list[dict]:
        out: list[dict] = []

        async def go() -> None:
            while (ev := await self.proto.next_event()) is not None:
                out.append(ev)
                if ev["type"] == kind:
                    return

        await asyncio.wait_for(go(), timeout)
        return out

    def queued(self) -> list[dict]:
        return self.proto.pending()

    async def error(self) -> dict:
        events = await self.until("error")
        return events[-1]["error"]

    async def user_text(self, text: str) -> None:
        await self.send(
            "conversation.item.create", item=_message("user", {"type": "input_text", "text": text})
        )


def _message(role: str, *content: dict) -> dict:
    return {"type": "message", "role": role, "content": list(content)}


def _data_url(data: bytes, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def _connect(engine: FakeEngine, model: str | None = None, **limits) -> Conn:
    hub = make_hub(engine, **limits)
    proto = RealtimeProtocol(hub, "test", model)
    await proto.start()
    conn = Conn(proto)
    created = await conn.until("session.created")
    assert len(created) == 1
    return conn


def _types(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


def _history(engine: FakeEngine, conn: Conn) -> list[str]:
    session = conn.proto.live.session
    assert session is not None
    return engine.history(session.id)


async def _idle(conn: Conn) -> None:
    session = conn.proto.live.session
    assert session is not None
    assert await session.wait_idle(5)


def _types_without_stats(events: list[dict]) -> list[str]:
    return [t for t in _types(events) if not t.startswith("streamer.")]


# ---- session -----------------------------------------------------------------------------------


def test_session_created_comes_first_with_the_defaults(fake):
    async def body():
        hub = make_hub(fake)
        proto = RealtimeProtocol(hub, "test", "gpt-realtime")
        await proto.start()
        (created,) = proto.pending()
        assert created["type"] == "session.created" and created["event_id"].startswith("event_")
        s = created["session"]
        assert s["type"] == "realtime" and s["model"] == "gpt-realtime"
        assert s["output_modalities"] == ["text"]
        assert s["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert s["audio"]["input"]["turn_detection"] is None and s["tools"] == []
        assert hub.sessions == 0  # the engine session opens at the first input
        await proto.connection_lost()
        assert not hub.connections

    run(body())


def test_instructions_sent_first_become_the_system_prompt(fake):
    async def body():
        conn = await _connect(fake)
        await conn.send("session.update", session={"type": "realtime", "instructions": "Be brief."})
        (updated,) = await conn.until("session.updated")
        assert updated["session"]["instructions"] == "Be brief."
        await conn.user_text("hi")
        session = conn.proto.live.session
        assert session is not None and session.session.config.system_prompt == "Be brief."
        await conn.proto.connection_lost()

    run(body())


@pytest.mark.parametrize(
    "session, param, code",
    [
        ({"output_modalities": ["audio"]}, "session.output_modalities", "unsupported_parameter"),
        ({"audio": {"input": {"turn_detection": {"type": "server_vad"}}}}, "session.audio.input.turn_detection", "unsupported_parameter"),
        ({"audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}, "session.audio.input.turn_detection", "unsupported_parameter"),
        ({"audio": {"input": {"transcription": {"model": "whisper-1"}}}}, "session.audio.input.transcription", "unsupported_parameter"),
        ({"tools": [{"type": "function", "name": "f"}]}, "session.tools", "unsupported_parameter"),
        ({"tool_choice": "required"}, "session.tool_choice", "unsupported_parameter"),
        ({"type": "transcription"}, "session.type", "unsupported_parameter"),
        ({"truncation": "disabled"}, "session.truncation", "unsupported_parameter"),
        ({"prompt": {"id": "pmpt_1"}}, "session.prompt", "unsupported_parameter"),
        ({"reasoning": {"effort": "low"}}, "session.reasoning", "unsupported_parameter"),
        ({"voice": "alloy"}, "session.voice", "unknown_parameter"),
        ({"max_output_tokens": 10**6}, "session.max_output_tokens", "invalid_value"),
        ({"audio": {"input": {"format": {"type": "audio/opus"}}}}, "session.audio.input.format.type", "invalid_value"),
        ({"audio": {"input": {"format": {"type": "audio/pcm", "rate": 1000}}}}, "session.audio.input.format.rate", "invalid_value"),
        ({"streamer": {"fps": 0}}, "session.streamer.fps", "invalid_value"),
        ({"streamer": {"colour": 1}}, "session.streamer.colour", "unknown_parameter"),
        ({"instructions": 5}, "session.instructions", "invalid_type"),
    ],
)  # fmt: skip
def test_session_update_refusals_name_the_field_and_change_nothing(fake, session, param, code):
    async def body():
        conn = await _connect(fake)
        event_id = await conn.send(
            "session.update", session={"type": "realtime", "instructions": "x", **session}
        )
        error = await conn.error()
        assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")
        assert error["event_id"] == event_id and error["message"]
        await conn.send("session.update", session={"type": "realtime"})
        (updated,) = await conn.until("session.updated")
        assert updated["session"]["instructions"] == ""  # the refused update was not applied at all
        await conn.proto.connection_lost()

    run(body())


def test_fields_accepted_without_effect(fake):
    async def body():
        conn = await _connect(fake)
        session = {
            "type": "realtime",
            "model": "gpt-realtime",
            "output_modalities": ["text"],
            "audio": {
                "input": {
                    "noise_reduction": {"type": "near_field"},
                    "turn_detection": None,
                    "transcription": None,
                },
                "output": {"voice": "alloy", "speed": 1.0, "format": {"type": "audio/pcm"}},
            },
            "tools": [],
            "tool_choice": "auto",
            "tracing": "auto",
            "include": [],
            "parallel_tool_calls": False,
            "max_output_tokens": "inf",
            "truncation": "auto",
        }
        await conn.send("session.update", session=session)
        (updated,) = await conn.until("session.updated")
        s = updated["session"]
        assert s["audio"]["input"]["noise_reduction"] == {"type": "near_field"}
        assert s["tracing"] == "auto" and s["max_output_tokens"] == "inf"
        await conn.proto.connection_lost()

    run(body())


def test_setup_fields_are_fixed_once_input_arrived(fake):
    async def body():
        conn = await _connect(fake)
        ext = {"max_context_tokens": 4096, "frame_soft_tokens": 140, "audio_segment_s": 2.0, "fps": 2.0}
        trunc = {"type": "retention_ratio", "retention_ratio": 0.5}
        await conn.send("session.update", session={"type": "realtime", "streamer": ext, "truncation": trunc})
        await conn.until("session.updated")
        await conn.user_text("hello")
        config = conn.proto.live.session.session.config
        assert (config.max_context_tokens, config.frame_soft_tokens, config.audio_segment_s) == (
            4096,
            140,
            2.0,
        )
        assert config.evict_to_fraction == 0.5
        assert config.audio_stall_s is None  # audio comes a turn at a time: a pause is not a stop
        await conn.send(
            "session.update", session={"type": "realtime", "streamer": {"max_context_tokens": 8192}}
        )
        error = await conn.error()
        assert (
            error["param"] == "session.streamer.max_context_tokens"
            and "before the first input" in error["message"]
        )
        trunc = {"type": "retention_ratio", "retention_ratio": 0.9}
        await conn.send("session.update", session={"type": "realtime", "truncation": trunc})
        assert (await conn.error())["param"] == "session.truncation"
        # the same values, or the sampling defaults, may still be sent
        await conn.send(
            "session.update", session={"type": "realtime", "streamer": {**ext, "temperature": 0.7}}
        )
        (updated,) = await conn.until("session.updated")
        assert updated["session"]["streamer"]["temperature"] == 0.7
        assert updated["session"]["streamer"]["context_budget_tokens"] == 4096
        await conn.proto.connection_lost()

    run(body())


def test_a_context_budget_the_model_cannot_hold_is_refused_at_session_update(bundled):
    """The engine session opens at the first input: its model's checks run at session.update, not then."""
    from streamer.engine.engine import Engine

    engine = Engine(*bundled)
    engine.start()

    async def body():
        conn = await _connect(engine)
        event_id = await conn.send(
            "session.update", session={"type": "realtime", "streamer": {"fps": 2.0, "max_context_tokens": 5}}
        )
        refused = await asyncio.wait_for(conn.proto.next_event(), 5)
        assert refused is not None and refused["type"] == "error", refused  # not session.updated
        error = refused["error"]
        assert (error["param"], error["code"], error["event_id"]) == (
            "session.streamer.max_context_tokens",
            "invalid_value",
            event_id,
        )
        assert "too small for this model" in error["message"]
        await conn.send("session.update", session={"type": "realtime"})
        (updated,) = await conn.until("session.updated")
        streamer = updated["session"]["streamer"]
        assert (streamer["max_context_tokens"], streamer["fps"]) == (None, 1.0)  # nothing of it applied
        await conn.user_text("hello")  # later input opens the session with the settings kept
        await conn.send("response.create")
        events = await conn.until("response.done", timeout=30)
        assert "error" not in _types(events), events
        assert conn.proto.live.session is not None
        await conn.proto.connection_lost()

    try:
        run(body(), timeout=60)
    finally:
        engine.stop()


# ---- text, responses ---------------------------------------------------------------------------


def test_text_question_streams_deltas_then_done_with_usage(fake):
    async def body():
        conn = await _connect(fake)
        await conn.user_text("What now?")
        added = await conn.until("conversation.item.done")
        assert _types(added) == ["conversation.item.added", "conversation.item.done"]
        user_item = added[0]["item"]
        assert user_item["role"] == "user" and user_item["content"] == [
            {"type": "input_text", "text": "What now?"}
        ]
        assert added[0]["previous_item_id"] is None
        await conn.send("response.create")
        events = await conn.until("response.done")
        types = _types(events)
        assert types[:4] == [
            "response.created",
            "response.output_item.added",
            "conversation.item.added",
            "response.content_part.added",
        ]
        assert types[-5:] == [
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
        ]
        deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
        assert deltas and "".join(deltas) == "one two three four five six"  # merged when read late
        created, done = events[0]["response"], events[-1]["response"]
        assert created["status"] == "in_progress" and created["id"] == done["id"]
        assert done["status"] == "completed" and done["status_details"] is None
        assert done["output"][0]["content"] == [
            {"type": "output_text", "text": "one two three four five six"}
        ]
        assert done["output"][0]["status"] == "completed"
        assert done["usage"]["output_tokens"] == 6 and done["usage"]["input_tokens"] > 0
        assert done["usage"]["total_tokens"] == done["usage"]["input_tokens"] + 6
        assert done["streamer"]["finish_reason"] == "stop" and done["streamer"]["ttft_s"] >= 0
        assistant_added = events[2]
        assert assistant_added["previous_item_id"] == user_item["id"]
        for e in events[1:-1]:
            if "response_id" in e:
                assert e["response_id"] == done["id"]
        assert _history(fake, conn) == ["question:What now?"]
        await conn.proto.connection_lost()

    run(body())


def test_the_latest_user_text_is_the_question(fake):
    async def body():
        conn = await _connect(fake)
        await conn.user_text("Alice operates the robot.")
        await conn.user_text("Who operates it?")
        assert conn.proto.held_question == "Who operates it?"
        await conn.send("response.create")
        await conn.until("response.done")
        # with no new user text the session's default question is asked
        await conn.send("response.create")
        await conn.until("response.done")
        await conn.send(
            "session.update", session={"type": "realtime", "streamer": {"default_question": "Go on."}}
        )
        await conn.send("response.create")
        await conn.until("response.done")
        assert _history(fake, conn) == [
            "user:Alice operates the robot.",
            "question:Who operates it?",
            f"question:{DEFAULT_QUESTION}",
            "question:Go on.",
        ]
        await conn.proto.connection_lost()

    run(body())


def test_system_and_assistant_items_are_turns_after_the_held_text(fake):
    async def body():
        conn = await _connect(fake)
        await conn.user_text("Hello.")
        await conn.send(
            "conversation.item.create", item=_message("system", {"type": "input_text", "text": "Be terse."})
        )
        await conn.send(
            "conversation.item.create", item=_message("assistant", {"type": "output_text", "text": "Hi."})
        )
        events = await conn.until("conversation.item.done")
        events += await conn.until("conversation.item.done")
        events += await conn.until("conversation.item.done")
        items = [e["item"] for e in events if e["type"] == "conversation.item.done"]
        assert [i["role"] for i in items] == ["user", "system", "assistant"]
        await _idle(conn)
        assert _history(fake, conn) == ["user:Hello.", "system:Be terse.", "assistant:Hi."]
        await conn.proto.connection_lost()

    run(body())


def test_max_output_tokens_ends_incomplete(fake):
    async def body():
        conn = await _connect(fake)
        await conn.send("session.update", session={"type": "realtime", "max_output_tokens": 4})
        await conn.user_text("Count.")
        await conn.send("response.create", response={"max_output_tokens": 2})
        done = (await conn.until("response.done"))[-1]["response"]
        assert done["status"] == "incomplete" and done["max_output_tokens"] == 2
        assert done["status_details"] == {"type": "incomplete", "reason": "max_output_tokens"}
        assert done["usage"]["output_tokens"] == 2 and done["output"][0]["status"] == "incomplete"
        await conn.send("response.create")  # the session's own max_output_tokens
        done = (await conn.until("response.done"))[-1]["response"]
        assert done["usage"]["output_tokens"] == 4
        await conn.proto.connection_lost()

    run(body())


def test_response_instructions_apply_to_that_response(fake):
    async def body():
        conn = await _connect(fake)
        await conn.send("session.update", session={"type": "realtime", "instructions": "Session rules."})
        await conn.user_text("One?")
        await conn.send(
            "response.create", response={"instructions": "Answer in French.", "metadata": {"k": "v"}}
        )
        done = (await conn.until("response.done"))[-1]["response"]
        assert done["metadata"] == {"k": "v"}
        await conn.user_text("Two?")
        await conn.send("response.create")
        await conn.until("response.done")
        await conn.user_text("Three?")
        await conn.send("response.create")
        await conn.until("response.done")
        assert _history(fake, conn) == [
            "system:Answer in French.",
            "question:One?",
            "system:Session rules.",
            "question:Two?",
            "question:Three?",
        ]
        await conn.proto.connection_lost()

    run(body())


@pytest.mark.parametrize(
    "response, param, code",
    [
        ({"conversation": "none"}, "response.conversation", "unsupported_parameter"),
        ({"input": []}, "response.input", "unsupported_parameter"),
        ({"output_modalities": ["audio"]}, "response.output_modalities", "unsupported_parameter"),
        ({"tools": [{"type": "function", "name": "f"}]}, "response.tools", "unsupported_parameter"),
        ({"tool_choice": {"type": "function", "name": "f"}}, "response.tool_choice", "unsupported_parameter"),
        ({"prompt": {"id": "pmpt_1"}}, "response.prompt", "unsupported_parameter"),
        ({"reasoning": {"effort": "low"}}, "response.reasoning", "unsupported_parameter"),
        ({"max_output_tokens": 0}, "response.max_output_tokens", "invalid_value"),
        ({"temperature": 0.5}, "response.temperature", "unknown_parameter"),
        ({"streamer": {"choices": []}}, "response.streamer.choices", "invalid_value"),
        ({"streamer": {"top_p": 2}}, "response.streamer.top_p", "invalid_value"),
    ],
)
def test_response_refusals_create_no_response(fake, response, param, code):
    async def body():
        conn = await _connect(fake)
        event_id = await conn.send("response.create", response=response)
        events = await conn.until("error")
        assert _types(events) == ["error"]
        error = events[0]["error"]
        assert (error["param"], error["code"], error["event_id"]) == (param, code, event_id)
        assert conn.proto.live.session is None  # nothing reached the engine
        await conn.proto.connection_lost()

    run(body())


def test_one_response_at_a_time():
    async def body():
        engine = FakeEngine("a b c d e f g h", step_delay_s=0.02)
        engine.start()
        try:
            conn = await _connect(engine)
            await conn.send("response.create")
            await conn.until("response.output_text.delta")
            await conn.send("response.create")
            error = await conn.error()
            assert error["code"] == "conversation_already_has_active_response"
            await conn.until("response.done")
            await conn.send("response.create")
            assert (await conn.until("response.done"))[-1]["response"]["status"] == "completed"
            await conn.proto.connection_lost()
        finally:
            engine.stop()

    run(body())


def test_response_cancel_mid_answer():
    async def body():
        engine = FakeEngine(" ".join(["word"] * 200), step_delay_s=0.01)
        engine.start()
        try:
            conn = await _connect(engine)
            await conn.send("response.cancel")
            assert (await conn.error())["code"] == "response_cancel_not_active"
            await conn.user_text("Talk.")
            await conn.send("response.create")
            created = (await conn.until("response.created"))[-1]["response"]
            await conn.until("response.output_text.delta")
            await conn.send("response.cancel", response_id="resp_other")
            error = await conn.error()
            assert (error["code"], error["param"]) == ("response_cancel_not_active", "response_id")
            await conn.send("response.cancel", response_id=created["id"])
            events = await conn.until("response.done")
            done = events[-1]["response"]
            assert done["status"] == "cancelled"
            assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
            assert done["output"][0]["status"] == "incomplete"
            assert 0 < done["usage"]["output_tokens"] < 200
            await conn.send("response.create")  # the session goes on
            assert (await conn.until("response.created"))[-1]["type"] == "response.created"
            await conn.proto.connection_lost()
        finally:
            engine.stop()

    run(body())


def test_choices_extension_constrains_the_answer(fake):
    async def body():
        conn = await _connect(fake)
        await conn.user_text("Left or right?")
        await conn.send("response.create", response={"streamer": {"choices": ["left", "right"], "seed": 1}})
        done = (await conn.until("response.done"))[-1]["response"]
        assert done["status"] == "completed" and done["streamer"]["finish_reason"] == "choice"
        assert done["output"][0]["content"][0]["text"] in ("left", "right")
        await conn.proto.connection_lost()

    run(body())


def test_a_model_error_fails_the_response():
    async def body():
        engine = FakeEngine("fine", fail_on="boom")
        engine.start()
        try:
            conn = await _connect(engine)
            await conn.user_text("boom?")
            await conn.send("response.create")
            done = (await conn.until("response.done"))[-1]["response"]
            assert done["status"] == "failed"
            error = done["status_details"]["error"]
            assert (error["type"], error["code"]) == ("server_error", "model_error")
            await conn.user_text("fine?")
            await conn.send("response.create")
            assert (await conn.until("response.done"))[-1]["response"]["status"] == "completed"
            await conn.proto.connection_lost()
        finally:
            engine.stop()

    run(body())


# ---- pictures ----------------------------------------------------------------------------------


def test_image_items_become_frames_at_arrival_then_the_question(fake):
    async def body():
        conn = await _connect(fake)
        image = {"type": "input_image", "image_url": _data_url(jpeg_bytes()), "detail": "low"}
        png = {"type": "input_image", "image_url": _data_url(jpeg_bytes(fmt="PNG"), "image/png")}
        await conn.send("conversation.item.create", item=_message("user", image))
        events = await conn.until("conversation.item.done")
        assert events[-1]["item"]["content"] == [{"type": "input_image", "detail": "low"}]  # no data echoed
        await conn.send(
            "conversation.item.create",
            item=_message("user", png, {"type": "input_text", "text": "What changed?"}),
        )
        await conn.until("conversation.item.done")
        await conn.send("response.create")
        await conn.until("response.done")
        history = _history(fake, conn)
        assert [h.split("@")[0] for h in history] == ["frame", "frame", "question:What changed?"]
        t0, t1 = (float(h.split("@")[1]) for h in history[:2])
        assert t1 - t0 >= 1.0  # pictures sent at once are spread over the session's fps, none skipped
        await conn.proto.connection_lost()

    run(body())


def test_image_errors_add_no_item(fake):
    async def body():
        conn = await _connect(fake)
        bad = [
            ({"type": "input_image", "image_url": "https://example.com/a.jpg"}, "unsupported_parameter"),
            ({"type": "input_image", "image_url": "data:image/gif;base64,R0lGOD"}, "invalid_value"),
            ({"type": "input_image", "image_url": "data:image/jpeg;base64,###"}, "invalid_value"),
            (
                {"type": "input_image", "image_url": _data_url(b"\xff\xd8\xff" + bytes(64))},
                "unsupported_media",
            ),
        ]
        for part, code in bad:
            event_id = await conn.send("conversation.item.create", item=_message("user", part))
            events = await conn.until("error")
            assert _types(events) == ["error"], events
            error = events[0]["error"]
            assert (error["code"], error["param"], error["event_id"]) == (
                code,
                "item.content[0].image_url",
                event_id,
            )
        await conn.proto.connection_lost()

    run(body())


def test_frame_extension_takes_timestamps_and_the_fps(fake):
    async def body():
        conn = await _connect(fake)
        await conn.send(
            "session.update", session={"type": "realtime", "streamer": {"fps": 1.0, "stats": True}}
        )
        for t in (0.0, 0.5, 1.0):
            await conn.send("streamer.input_frame.append", image=_b64(jpeg_bytes()), t_s=t)
        await conn.send(
            "streamer.input_frame.append", image=_data_url(jpeg_bytes(fmt="PNG"), "image/png"), t_s=2
        )
        await conn.send("streamer.input_frame.append", image=_b64(jpeg_bytes()))  # now: before 2 s, skipped
        await conn.send("streamer.input_frame.append", image=_b64(b"not an image"))
        assert (await conn.error())["param"] == "image"
        await conn.send("streamer.input_frame.append", image=_b64(jpeg_bytes()), t_s=-1)
        assert (await conn.error())["param"] == "t_s"
        await conn.send("response.create")
        events = await conn.until("response.done")
        events += await conn.until("streamer.session.stats")
        stats = events[-1]["stats"]
        assert stats["skipped_frames"] == 2 and stats["frames"] == 3
        history = _history(fake, conn)
        assert history[:3] == ["frame@0", "frame@1", "frame@2"]
        await conn.proto.connection_lost()

    run(body())


# ---- audio -------------------------------------------------------------------------------------


def test_appended_audio_is_committed_as_an_item_at_its_arrival_time():
    async def body():
        clock = [100.0]
        engine = FakeEngine("ok")
        engine.start()
        try:
            hub = make_hub(engine)
            hub.clock = lambda: clock[0]
            proto = RealtimeProtocol(hub, "test")
            await proto.start()
            conn = Conn(proto)
            await conn.user_text("Listen.")  # opens the session at clock 100 = session time 0
            clock[0] = 102.0
            pcm = pcm_s16(1.0, rate=24_000)
            await conn.send("input_audio_buffer.append", audio=_b64(pcm[: len(pcm) // 2]))
            clock[0] = 103.0
            await conn.send("input_audio_buffer.append", audio=_b64(pcm[len(pcm) // 2 :]))
            await conn.send("input_audio_buffer.commit")
            events = await conn.until("input_audio_buffer.committed")
            committed = events[-1]
            events = await conn.until("conversation.item.done")
            item = events[-1]["item"]
            assert committed["item_id"] == item["id"] and committed["previous_item_id"] is not None
            assert item["content"] == [{"type": "input_audio", "transcript": None}]
            await conn.send("response.create")
            await conn.until("response.done")
            history = _history(engine, conn)
            assert history[0] == "audio@2" and history[-1] == "question:Listen."
            assert proto.live.session.stats().audio_s == pytest.approx(1.0, abs=0.05)
            await proto.connection_lost()
        finally:
            engine.stop()

    run(body())


@pytest.mark.parametrize("fmt", ["audio/pcm@16000", "audio/pcmu", "audio/pcma"])
def test_declared_input_formats(fake, fmt):
    async def body():
        conn = await _connect(fake)
        kind, _, rate = fmt.partition("@")
        declared = {"type": kind, **({"rate": int(rate)} if rate else {})}
        await conn.send(
            "session.update", session={"type": "realtime", "audio": {"input": {"format": declared}}}
        )
        (updated,) = await conn.until("session.updated")
        assert updated["session"]["audio"]["input"]["format"]["rate"] == int(rate or 8000)
        data = pcm_s16(1.0, rate=16_000) if rate else bytes(np.full(8000, 0x55, np.uint8))
        await conn.send("input_audio_buffer.append", audio=_b64(data))
        await conn.send("input_audio_buffer.commit")
        await conn.until("conversation.item.done")
        await conn.send("response.create")  # the question flushes the audio segment still open
        await conn.until("response.done")
        assert conn.proto.live.session.stats().audio_s == pytest.approx(1.0, abs=0.05)
        await conn.proto.connection_lost()

    run(body())


def test_audio_buffer_errors_and_clear(fake):
    async def body():
        conn = await _connect(fake, max_pending_bytes=1 << 20)
        await conn.send("input_audio_buffer.commit")
        assert (await conn.error())["code"] == "input_audio_buffer_commit_empty"
        await conn.send("input_audio_buffer.append", audio=_b64(b"\x00\x01\x02"))
        assert (await conn.error())["param"] == "audio"
        await conn.send("input_audio_buffer.append", audio="%%%")
        assert (await conn.error())["param"] == "audio"
        await conn.send("input_audio_buffer.append", audio=_b64(pcm_s16(0.05, rate=24_000)))
        await conn.send("input_audio_buffer.commit")
        error = await conn.error()
        assert error["code"] == "input_audio_buffer_commit_empty" and "50.00ms" in error["message"]
        await conn.send("input_audio_buffer.append", audio=_b64(pcm_s16(1.0, rate=24_000)))
        change = {"audio": {"input": {"format": {"type": "audio/pcmu"}}}}
        await conn.send("session.update", session={"type": "realtime", **change})
        assert (await conn.error())["param"] == "session.audio.input.format"
        await conn.send("input_audio_buffer.clear")
        assert _types(await conn.until("input_audio_buffer.cleared")) == ["input_audio_buffer.cleared"]
        assert conn.proto.audio_buffered_bytes == 0
        await conn.send("input_audio_buffer.commit")
        assert (await conn.error())["code"] == "input_audio_buffer_commit_empty"
        # the buffer holds at most half the media queue (1 MiB as 16 kHz float32: 8.2 s)
        await conn.send("input_audio_buffer.append", audio=_b64(pcm_s16(9.0, rate=24_000)))
        assert (await conn.error())["code"] == "input_audio_buffer_full"
        assert conn.proto.live.session is None
        await conn.proto.connection_lost()

    run(body())


def test_audio_inside_an_item(fake):
    async def body():
        conn = await _connect(fake)
        part = {"type": "input_audio", "audio": _b64(pcm_s16(1.0, rate=24_000))}
        await conn.send(
            "conversation.item.create", item=_message("user", part, {"type": "input_text", "text": "Heard?"})
        )
        item = (await conn.until("conversation.item.done"))[-1]["item"]
        assert item["content"] == [
            {"type": "input_audio", "transcript": None},
            {"type": "input_text", "text": "Heard?"},
        ]
        await conn.send("response.create")
        await conn.until("response.done")
        assert _history(fake, conn)[-1] == "question:Heard?"
        assert conn.proto.live.session.stats().audio_s == pytest.approx(1.0, abs=0.05)
        await conn.proto.connection_lost()

    run(body())


def test_appends_alone_keep_the_session_alive(fake):
    async def body():
        conn = await _connect(fake, idle_timeout_s=0.4)
        await conn.user_text("open")
        for _ in range(8):
            await asyncio.sleep(0.1)
            await conn.send("input_audio_buffer.append", audio=_b64(pcm_s16(0.1, rate=24_000)))
        assert not conn.proto.finished
        await asyncio.sleep(0.8)
        events = await conn.until("error")
        assert events[-1]["error"]["code"] == "idle_timeout"
        assert await conn.proto.next_event() is None
        await conn.proto.connection_lost()

    run(body())


# ---- items: refusals, retrieve, unsupported events ---------------------------------------------


@pytest.mark.parametrize(
    "item, param, code",
    [
        ({"type": "function_call", "name": "f", "arguments": "{}"}, "item.type", "unsupported_parameter"),
        (
            {"type": "function_call_output", "call_id": "c", "output": "x"},
            "item.type",
            "unsupported_parameter",
        ),
        (_message("tool", {"type": "input_text", "text": "x"}), "item.role", "invalid_value"),
        (
            _message("assistant", {"type": "output_audio", "audio": ""}),
            "item.content[0].type",
            "unsupported_parameter",
        ),
        (
            _message("system", {"type": "input_image", "image_url": ""}),
            "item.content[0].type",
            "invalid_value",
        ),
        (_message("user"), "item.content", "invalid_value"),
        (
            {**_message("user", {"type": "input_text", "text": "x"}), "colour": 1},
            "item.colour",
            "unknown_parameter",
        ),
    ],
)
def test_item_refusals(fake, item, param, code):
    async def body():
        conn = await _connect(fake)
        await conn.send("conversation.item.create", item=item)
        error = await conn.error()
        assert (error["param"], error["code"]) == (param, code)
        await conn.proto.connection_lost()

    run(body())


def test_items_append_only_and_retrieve(fake):
    async def body():
        conn = await _connect(fake)
        item = {**_message("user", {"type": "input_text", "text": "first"}), "id": "item_mine"}
        await conn.send("conversation.item.create", item=item)
        await conn.until("conversation.item.done")
        await conn.send("conversation.item.create", item=item)
        assert (await conn.error())["param"] == "item.id"
        await conn.send("conversation.item.create", previous_item_id="item_other", item=_message("user"))
        assert (await conn.error())["param"] == "previous_item_id"
        second = _message("user", {"type": "input_text", "text": "second"})
        await conn.send("conversation.item.create", previous_item_id="item_mine", item=second)
        events = await conn.until("conversation.item.done")
        assert events[-1]["previous_item_id"] == "item_mine"
        await conn.send("conversation.item.retrieve", item_id="item_mine")
        retrieved = (await conn.until("conversation.item.retrieved"))[-1]
        assert retrieved["item"]["content"] == [{"type": "input_text", "text": "first"}]
        await conn.send("conversation.item.retrieve", item_id="item_gone")
        error = await conn.error()
        assert (error["code"], error["param"]) == ("item_not_found", "item_id")
        await conn.proto.connection_lost()

    run(body())


@pytest.mark.parametrize(
    "kind, fields",
    [
        ("conversation.item.delete", {"item_id": "item_1"}),
        ("conversation.item.truncate", {"item_id": "item_1", "content_index": 0, "audio_end_ms": 10}),
        ("output_audio_buffer.clear", {}),
    ],
)
def test_unsupported_events_are_refused_by_name(fake, kind, fields):
    async def body():
        conn = await _connect(fake)
        event_id = await conn.send(kind, **fields)
        error = await conn.error()
        assert (error["code"], error["param"], error["event_id"]) == ("unsupported_event", "type", event_id)
        assert kind in error["message"]
        await conn.proto.connection_lost()

    run(body())


def test_malformed_events(fake):
    async def body():
        conn = await _connect(fake, max_message_bytes=4096)
        await conn.proto.receive("{not json")
        assert (await conn.error())["code"] == "invalid_json"
        await conn.proto.receive("[1, 2]")
        assert (await conn.error())["code"] == "invalid_json"
        await conn.proto.receive('{"event_id": "e1"}')
        error = await conn.error()
        assert (error["code"], error["param"], error["event_id"]) == (
            "missing_required_parameter",
            "type",
            "e1",
        )
        await conn.send("response.text.delta")
        error = await conn.error()
        assert (error["code"], error["param"]) == ("invalid_value", "type")
        await conn.send("input_audio_buffer.commit", extra=1)
        assert (await conn.error())["code"] == "unknown_parameter"
        await conn.proto.receive(None, b"\x00\x01")
        assert "binary" in (await conn.error())["message"]
        await conn.proto.receive(
            json.dumps({"type": "session.update", "session": {"instructions": "x" * 5000}})
        )
        assert (await conn.error())["code"] == "message_too_large"
        assert not conn.proto.finished
        await conn.proto.connection_lost()

    run(body())


# ---- server-side endings -----------------------------------------------------------------------


def test_admission_is_refused_when_the_server_is_full(fake):
    async def body():
        first = await _connect(fake, max_sessions=1)
        await first.user_text("I hold the session.")
        proto = RealtimeProtocol(first.proto.hub, "second")
        await proto.start()
        (error,) = proto.pending()
        assert error["type"] == "error" and error["error"]["code"] == "session_limit"
        assert await proto.next_event() is None and proto.close_reason is CloseReason.TRY_AGAIN
        await proto.connection_lost()
        await first.proto.connection_lost()

    run(body())


def test_an_idle_connection_without_a_session_is_closed(fake):
    async def body():
        conn = await _connect(fake, idle_timeout_s=0.3)
        error = await conn.error()
        assert error["code"] == "idle_timeout"
        assert await conn.proto.next_event() is None and conn.proto.close_reason is CloseReason.POLICY
        await conn.proto.connection_lost()
        assert not conn.proto.hub.connections

    run(body())


def test_drain_sends_go_away_then_ends(fake):
    async def body():
        conn = await _connect(fake)
        await conn.user_text("hello")
        await conn.until("conversation.item.done")
        drain = asyncio.ensure_future(conn.proto.hub.drain(0.2))
        events = await conn.until("error")
        assert events[0]["type"] == "streamer.session.go_away" and events[0]["seconds_left"] == 0.2
        assert events[-1]["error"]["code"] == "going_away"
        assert await conn.proto.next_event() is None and conn.proto.close_reason is CloseReason.GOING_AWAY
        await conn.proto.connection_lost()
        await drain
        # a connection arriving during the drain is refused
        proto = RealtimeProtocol(conn.proto.hub, "late")
        await proto.start()
        assert proto.pending()[0]["error"]["code"] == "unavailable"
        assert proto.close_reason is CloseReason.GOING_AWAY
        await proto.connection_lost()

    run(body())


def test_stats_are_sent_only_when_asked(fake):
    async def body():
        conn = await _connect(fake, stats_interval_s=0.05)
        await conn.user_text("a?")
        await conn.send("response.create")
        events = await conn.until("response.done")
        await asyncio.sleep(0.2)
        assert not [e for e in events + conn.queued() if e["type"] == "streamer.session.stats"]
        await conn.send("session.update", session={"type": "realtime", "streamer": {"stats": True}})
        stats = (await conn.until("streamer.session.stats"))[-1]["stats"]
        assert stats["session_id"] == conn.proto.live.session.id and stats["context_tokens"] > 0
        await conn.proto.connection_lost()

    run(body())


def test_a_client_that_never_reads_is_disconnected(fake):
    async def body():
        conn = await _connect(fake, max_outbound_messages=4)
        for i in range(5):
            await conn.user_text(f"item {i}")
        events = conn.queued()
        assert _types(events) == ["error"] and events[0]["error"]["code"] == "slow_consumer"
        assert conn.proto.finished and conn.proto.close_reason is CloseReason.POLICY
        await conn.proto.connection_lost()

    run(body())


def test_disconnect_mid_answer_closes_the_engine_session():
    async def body():
        engine = FakeEngine(" ".join(["word"] * 500), step_delay_s=0.01)
        engine.start()
        try:
            conn = await _connect(engine)
            await conn.send("response.create")
            await conn.until("response.output_text.delta")
            session = conn.proto.live.session
            await conn.proto.connection_lost()
            assert session.closed and not conn.proto.hub.connections
        finally:
            engine.stop()

    run(body())
