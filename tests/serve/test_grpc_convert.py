"""The proto mirrors streamer.serve.messages one to one; conversions both ways; codegen is current."""

from __future__ import annotations

import dataclasses

import pytest

from streamer.errors import ProtocolError
from streamer.serve import grpc_convert
from streamer.serve import messages as m
from streamer.serve.limits import ServeLimits
from streamer.serve.proto.streamer.v1 import streamer_pb2 as pb

pytestmark = pytest.mark.timeout(60)

CLIENT = {m.Setup: pb.Setup, m.Frame: pb.Frame, m.Audio: pb.Audio, m.Text: pb.Text, m.AskMsg: pb.Question,
          m.CancelMsg: pb.Cancel, m.CloseMsg: pb.Close, m.Sampling: pb.SamplingParams}  # fmt: skip
SERVER = {m.Ready: pb.Ready, m.AnswerDelta: pb.AnswerDelta, m.AnswerDone: pb.AnswerDone, m.Stats: pb.Stats,
          m.Error: pb.Error, m.GoAway: pb.GoAway}  # fmt: skip


@pytest.mark.parametrize("cls, proto", [*CLIENT.items(), *SERVER.items()], ids=lambda x: x.__name__)
def test_every_message_field_has_a_proto_field_of_the_same_name(cls, proto):
    fields = {f.name for f in dataclasses.fields(cls)}
    if cls in CLIENT:
        fields.discard("seq")  # on the LiveRequest envelope
    assert fields <= set(proto.DESCRIPTOR.fields_by_name), fields - set(proto.DESCRIPTOR.fields_by_name)


def test_limits_proto_has_every_public_limit():
    assert set(ServeLimits().public()) <= set(pb.Limits.DESCRIPTOR.fields_by_name)


def test_client_messages_convert_with_unset_fields_as_none():
    msg = grpc_convert.client_message(pb.LiveRequest(seq=7, setup=pb.Setup(fps=2.0)))
    assert msg == m.Setup(seq=7, fps=2.0)
    msg = grpc_convert.client_message(pb.LiveRequest(setup=pb.Setup(sampling=pb.SamplingParams(top_k=0))))
    assert msg.seq is None and msg.sampling == m.Sampling(top_k=0)
    frame = grpc_convert.client_message(pb.LiveRequest(frame=pb.Frame(data=b"\x89PNG\r\n\x1a\n", t_s=0.0)))
    assert frame == m.Frame(data=b"\x89PNG\r\n\x1a\n", format="png", t_s=0.0)
    rgb = grpc_convert.client_message(pb.LiveRequest(frame=pb.Frame(data=b"\0" * 12, width=2, height=2)))
    assert rgb.format == "rgb" and (rgb.width, rgb.height) == (2, 2)
    audio = grpc_convert.client_message(
        pb.LiveRequest(audio=pb.Audio(data=b"\0\0", format=pb.PCM_FORMAT_F32LE))
    )
    assert audio == m.Audio(data=b"\0\0", format="f32le", sample_rate=16_000, channels=1)
    ask = grpc_convert.client_message(
        pb.LiveRequest(seq=3, ask=pb.Question(question="q", choices=["a", "b"]))
    )
    assert ask == m.AskMsg(question="q", choices=("a", "b"), seq=3)
    assert grpc_convert.client_message(pb.LiveRequest(text=pb.Text(text="hi"))) == m.Text(text="hi")
    assert grpc_convert.client_message(pb.LiveRequest(cancel=pb.Cancel())) == m.CancelMsg()
    assert grpc_convert.client_message(pb.LiveRequest(seq=9, close=pb.Close())) == m.CloseMsg(seq=9)


def test_empty_or_unknown_values_are_bad_messages():
    with pytest.raises(ProtocolError) as info:
        grpc_convert.client_message(pb.LiveRequest(seq=4))
    assert info.value.code == "bad_message" and info.value.seq == 4
    with pytest.raises(ProtocolError):
        grpc_convert.client_message(pb.LiveRequest(frame=pb.Frame(format=99)))
    with pytest.raises(ProtocolError):
        grpc_convert.client_message(pb.LiveRequest(audio=pb.Audio(format=7)))


def test_server_messages_convert():
    ready = grpc_convert.live_response(m.Ready("sess_1", 4096, ServeLimits().public(), seq=0))
    assert ready.ready.session_id == "sess_1" and ready.ready.seq == 0
    assert ready.ready.limits.max_message_bytes == ServeLimits().max_message_bytes
    done = grpc_convert.live_response(m.AnswerDone("req_1", "error", None, 3, 0.5, "model_error", "boom", 5))
    assert done.answer_done.finish_reason == pb.FINISH_REASON_ERROR
    assert not done.answer_done.HasField("ttft_s") and done.answer_done.error_code == "model_error"
    delta = grpc_convert.live_response(m.AnswerDelta("req_1", "hi", [1, 2]))
    assert list(delta.answer_delta.token_ids) == [1, 2]
    err = grpc_convert.live_response(m.Error("bad_seq", "no", seq=None, fatal=True))
    assert err.error.fatal and not err.error.HasField("seq")
    assert grpc_convert.live_response(m.GoAway(2.5, "drain")).go_away.seconds_left == 2.5
