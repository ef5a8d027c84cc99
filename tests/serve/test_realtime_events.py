"""Realtime event parsing and building: every server event validates against the official SDK's models."""

from __future__ import annotations

import base64
import json

import pytest

from streamer.serve.limits import ServeLimits
from streamer.serve.realtime import RealtimeProtocol
from streamer.serve.realtime_events import (
    ACCEPTED_WITHOUT_EFFECT,
    CLIENT_EVENTS,
    RealtimeError,
    decode_data_url,
    error_event,
    parse_item,
    parse_response_params,
    response_status,
)
from streamer.serve.realtime_session import SessionSettings, apply_session_update

from .conftest import jpeg_bytes, make_hub, pcm_s16, run

pydantic = pytest.importorskip("pydantic")
realtime_types = pytest.importorskip("openai.types.realtime")


def test_data_urls():
    data = jpeg_bytes()
    b64 = base64.b64encode(data).decode()
    assert decode_data_url(f"data:image/jpeg;base64,{b64}", "p") == ("jpeg", data)
    assert decode_data_url(f"data:image/png;charset=x;base64,{b64}", "p")[0] == "png"
    for bad, code in [
        ("http://example.com/x.png", "unsupported_parameter"),
        ("data:image/jpeg,abc", "invalid_value"),  # not base64
        ("data:text/plain;base64,aGk=", "invalid_value"),
        ("data:image/webp;base64,@@@", "invalid_value"),
        (5, "invalid_type"),
    ]:
        with pytest.raises(RealtimeError) as info:
            decode_data_url(bad, "item.content[0].image_url")
        assert info.value.code == code and info.value.param == "item.content[0].image_url"


def test_session_update_is_all_or_nothing():
    limits = ServeLimits()
    base = SessionSettings()
    new = apply_session_update(
        base, {"type": "realtime", "instructions": "x", "max_output_tokens": 7}, limits, False
    )
    assert (new.instructions, new.max_output_tokens) == ("x", 7)
    assert base.instructions == ""  # frozen: the caller keeps the old settings on a refusal
    with pytest.raises(RealtimeError):
        apply_session_update(base, {"instructions": "y", "tools": [{"type": "function"}]}, limits, False)
    with pytest.raises(RealtimeError) as info:
        apply_session_update(base, [], limits, False)
    assert info.value.param == "session"


def test_items_and_response_params():
    limits = ServeLimits(max_text_chars=10)
    item = parse_item(
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}, limits
    )
    assert item.role == "user" and item.text == "hi" and item.id.startswith("item_")
    with pytest.raises(RealtimeError) as info:
        parse_item(
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x" * 11}]}, limits
        )
    assert info.value.code == "string_above_max_length"
    params = parse_response_params({"streamer": {"choices": ["a", "b"], "temperature": 0.5}}, limits)
    assert params.choices == ("a", "b") and params.temperature == 0.5
    assert parse_response_params(None, limits).max_output_tokens is None
    assert parse_response_params({"max_output_tokens": "inf"}, ServeLimits()).max_output_tokens == "inf"


def test_statuses():
    assert response_status("stop", None, None) == ("completed", None)
    assert response_status("length", None, None)[1] == {"type": "incomplete", "reason": "max_output_tokens"}
    status, details = response_status("closed", None, None)
    assert status == "failed" and details["error"]["code"] == "session_closed"
    status, details = response_status("error", "queue_full", "full")
    assert details["error"] == {"type": "invalid_request_error", "code": "queue_full", "message": "full"}


def test_error_event_shape():
    ev = error_event("invalid_value", "bad", param="type", client_event_id="evt_1")
    assert ev["type"] == "error" and ev["event_id"].startswith("event_")
    assert ev["error"] == {
        "type": "invalid_request_error",
        "code": "invalid_value",
        "message": "bad",
        "param": "type",
        "event_id": "evt_1",
    }


def test_the_compatibility_table_lists_every_sdk_event():
    """docs/realtime.md names every client and server event the installed SDK knows, and every decision."""
    import typing
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "realtime.md").read_text(encoding="utf-8")

    def names(union) -> set[str]:
        members = typing.get_args(typing.get_args(union)[0])
        return {typing.get_args(m.model_fields["type"].annotation)[0] for m in members}

    client = names(realtime_types.RealtimeClientEvent)
    server = names(realtime_types.RealtimeServerEvent)
    assert client <= set(CLIENT_EVENTS)
    for name in sorted(client | server | set(CLIENT_EVENTS)):
        assert f"`{name}`" in doc, name
    for field in ACCEPTED_WITHOUT_EFFECT:
        assert f"`{field}`" in doc, field


def test_every_server_event_validates_against_the_sdk_models(fake):
    """A whole conversation's events, strictly validated (not just constructed) by the SDK's pydantic models."""
    adapter = pydantic.TypeAdapter(realtime_types.RealtimeServerEvent)

    async def body():
        proto = RealtimeProtocol(make_hub(fake), "test", "gpt-realtime")
        await proto.start()
        events: list[dict] = []

        async def send(**ev) -> None:
            await proto.receive(json.dumps(ev))

        async def until(kind: str) -> None:
            while (ev := await proto.next_event()) is not None:
                events.append(ev)
                if ev["type"] == kind:
                    return

        await send(type="session.update", session={"type": "realtime", "instructions": "Hi"})
        await until("session.updated")
        image = "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes()).decode()
        content = [{"type": "input_image", "image_url": image}, {"type": "input_text", "text": "Look"}]
        await send(
            type="conversation.item.create", item={"type": "message", "role": "user", "content": content}
        )
        await until("conversation.item.done")
        await send(
            type="input_audio_buffer.append", audio=base64.b64encode(pcm_s16(0.5, rate=24_000)).decode()
        )
        await send(type="input_audio_buffer.commit")
        await until("conversation.item.done")
        await send(type="input_audio_buffer.clear")
        await until("input_audio_buffer.cleared")
        await send(type="response.create", response={"max_output_tokens": 3, "metadata": {"a": "b"}})
        await until("response.done")
        await send(type="conversation.item.retrieve", item_id=events[-1]["response"]["output"][0]["id"])
        await until("conversation.item.retrieved")
        await send(type="response.create", response={"output_modalities": ["audio"]})
        await until("error")
        await proto.connection_lost()
        return events

    events = run(body())
    kinds = {e["type"] for e in events}
    assert {"session.created", "response.output_text.delta", "response.done", "error"} <= kinds
    for ev in events:
        parsed = adapter.validate_python(ev)
        assert parsed.type == ev["type"]
