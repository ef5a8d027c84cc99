"""The transport-neutral messages: dict form round trips and every malformed-field error."""

from __future__ import annotations

import pytest

from streamer.errors import ProtocolError
from streamer.serve.messages import (
    CLIENT_TYPES,
    AskMsg,
    Audio,
    CancelMsg,
    CloseMsg,
    Frame,
    Sampling,
    Setup,
    Text,
    client_message_from_dict,
    to_dict,
)

pytestmark = pytest.mark.timeout(30)

SAMPLES = [
    Setup(seq=0, system_prompt="Watch.", fps=2.0, sampling=Sampling(max_new_tokens=8, temperature=0.5)),
    Frame(b"\xff\xd8\xff\x00", "jpeg", None, None, 1.5, 1),
    Frame(b"\x00" * 12, "rgb", 2, 2, None, 2),
    Audio(b"\x00\x01" * 8, "s16le", 48_000, 2, 0.25, 3),
    Text("Alice is the operator.", "user", 4),
    AskMsg("left or right?", ("left", "right"), Sampling(seed=3), "req-1", 5),
    CancelMsg("req-1", 6),
    CloseMsg(7),
]


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: m.TYPE)
def test_round_trip(message):
    assert client_message_from_dict(to_dict(message)) == message


def test_every_client_type_is_covered():
    assert {m.TYPE for m in SAMPLES} == set(CLIENT_TYPES)


@pytest.mark.parametrize(
    "data, fragment",
    [
        ([1, 2], "must be an object"),
        ({"seq": 1}, 'needs a string "type"'),
        ({"type": "dance", "seq": 3}, "unknown message type 'dance'"),
        ({"type": "ask", "question": 5}, "ask.question must be a string, got a number"),
        ({"type": "ask", "question": "q", "choices": "yes"}, "ask.choices must be a list of strings"),
        ({"type": "ask", "question": "q", "colour": "red"}, "unknown field 'colour'"),
        ({"type": "setup", "fps": "fast"}, "setup.fps must be a number"),
        ({"type": "setup", "fps": True}, "setup.fps must be a number, got a boolean"),
        ({"type": "setup", "sampling": {"top_k": 1.5}}, "setup.sampling.top_k must be an integer"),
        ({"type": "setup", "sampling": {"nope": 1}}, "unknown field 'nope'"),
        ({"type": "text", "text": None}, "text.text must not be null"),
        ({"type": "close", "seq": -1}, "close.seq must be in [0, 4294967295]"),
        ({"type": "close", "seq": 2**32}, "close.seq must be in"),
        ({"type": "frame", "data": "not base64!"}, "frame.data is not valid base64"),
    ],
)
def test_malformed_fields_are_named(data, fragment):
    with pytest.raises(ProtocolError) as info:
        client_message_from_dict(data)
    assert fragment in str(info.value)
    assert info.value.code == "bad_message"


def test_seq_is_reported_when_readable():
    with pytest.raises(ProtocolError) as info:
        client_message_from_dict({"type": "ask", "question": 1, "seq": 42})
    assert info.value.seq == 42


def test_base64_media_in_json():
    msg = client_message_from_dict({"type": "audio", "data": "AAEAAQ==", "sample_rate": 8000, "seq": 1})
    assert isinstance(msg, Audio) and msg.data == b"\x00\x01\x00\x01" and msg.sample_rate == 8000
