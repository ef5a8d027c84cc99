"""WebSocket framing without sockets: the binary media header and JSON text, every bad input."""

from __future__ import annotations

import json
import math
import struct

import pytest

from streamer.errors import ProtocolError
from streamer.serve.messages import AnswerDone, Audio, Error, Frame
from streamer.serve.ws import HEADER, HEADER_BYTES, decode_client, encode_media, encode_server

pytestmark = pytest.mark.timeout(30)
LIMIT = 1 << 20


def test_header_is_24_bytes():
    assert HEADER_BYTES == 24


@pytest.mark.parametrize(
    "message",
    [
        Frame(b"\xff\xd8\xffpayload", "jpeg", None, None, 12.25, 7),
        Frame(b"\x89PNG\r\n\x1a\n..", "png", None, None, None, 8),
        Frame(b"RIFF....WEBP", "webp", None, None, 0.0, 9),
        Frame(b"\x00" * 12, "rgb", 2, 2, 1.0, 10),
        Audio(b"\x00\x00" * 320, "s16le", 16_000, 1, 3.5, 11),
        Audio(b"\x00" * 32, "f32le", 48_000, 2, None, 2**32 - 1),
    ],
    ids=lambda m: f"{m.TYPE}-{m.format}",
)
def test_media_round_trip(message):
    assert decode_client(None, encode_media(message), LIMIT) == message


def _header(**kw):
    fields = dict(version=1, kind=1, fmt=1, flags=1, seq=5, t=0.0, a=0, b=0)
    fields.update(kw)
    return HEADER.pack(*fields.values()) + b"\xff\xd8\xff"


@pytest.mark.parametrize(
    "data, fragment",
    [
        (b"\x01\x01", "shorter than the 24-byte header"),
        (_header(version=2), "unknown header version 2"),
        (_header(kind=9), "unknown media kind 9"),
        (_header(fmt=9), "unknown frame format code 9"),
        (_header(kind=2, fmt=7), "unknown audio format code 7"),
        (_header(flags=6), "unknown header flags"),
        (_header(t=math.nan), "t_s is not finite"),
        (_header(a=10, b=10), "only for rgb frames"),
    ],
)
def test_bad_headers(data, fragment):
    with pytest.raises(ProtocolError) as info:
        decode_client(None, data, LIMIT)
    assert info.value.code == "bad_header"
    assert fragment in str(info.value)
    if len(data) >= 8:
        assert info.value.seq == 5


def test_oversized_binary_and_text():
    big = _header() + b"\x00" * LIMIT
    with pytest.raises(ProtocolError) as info:
        decode_client(None, big, LIMIT)
    assert info.value.code == "message_too_large" and info.value.seq == 5
    with pytest.raises(ProtocolError) as info:
        decode_client(json.dumps({"type": "text", "text": "x" * LIMIT}), None, LIMIT)
    assert info.value.code == "message_too_large"


@pytest.mark.parametrize("text", ["{bad", "", "[" * 100_000, '{"type": "ask", "seq": ' + "9" * 5000 + "}"])
def test_malformed_json(text):
    with pytest.raises(ProtocolError) as info:
        decode_client(text, None, 1 << 22)
    assert info.value.code == "bad_message"
    assert str(info.value).startswith("malformed JSON") and "sys." not in str(info.value)  # no Python advice


def test_server_messages_are_json_with_a_type():
    done = json.loads(encode_server(AnswerDone("req_1", "stop", 0.01, 3, 0.02, seq=4)))
    assert done == {
        "type": "answer_done", "request_id": "req_1", "finish_reason": "stop", "ttft_s": 0.01, "tokens": 3,
        "latency_s": 0.02, "error_code": None, "error_message": None, "seq": 4,
    }  # fmt: skip
    err = json.loads(encode_server(Error("queue_full", "full", 9)))
    assert err["type"] == "error" and err["code"] == "queue_full" and err["fatal"] is False


def test_header_layout_is_little_endian():
    data = encode_media(Audio(b"", "s16le", 44_100, 2, 1.5, 258))
    assert data[:4] == bytes([1, 2, 1, 1])
    assert struct.unpack("<I", data[4:8]) == (258,)
    assert struct.unpack("<d", data[8:16]) == (1.5,)
    assert struct.unpack("<II", data[16:24]) == (44_100, 2)
