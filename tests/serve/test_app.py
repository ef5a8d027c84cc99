"""The ASGI app over real sockets on loopback, with the fake engine: HTTP routes, WebSocket, auth, limits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from streamer.engine.fake import FakeEngine
from streamer.serve.limits import ServeLimits
from streamer.serve.messages import Audio, Frame
from streamer.serve.ws import encode_media

from .conftest import jpeg_bytes, pcm_s16, running_server

pytestmark = pytest.mark.timeout(60)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _recv(ws, until: str, timeout: float = 10.0) -> list[dict]:
    out = []
    deadline = time.monotonic() + timeout
    while True:
        out.append(json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic()))))
        if out[-1]["type"] == until:
            return out


def _setup(ws, **fields) -> dict:
    ws.send(json.dumps({"type": "setup", "seq": 0, **fields}))
    ready = json.loads(ws.recv(timeout=10))
    assert ready["type"] == "ready", ready
    return ready


@pytest.fixture
def engine():
    e = FakeEngine("the answer is forty two", step_delay_s=0.002)
    e.start()
    yield e
    e.stop()


def test_routes_and_a_live_session(engine):
    with running_server(engine) as srv:
        base = f"http://127.0.0.1:{srv.http_port}"
        status, body = _get(base + "/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"
        status, body = _get(base + "/")
        assert status == 200 and "<!doctype html>" in body.lower() and "streamer" in body
        with connect(f"ws://127.0.0.1:{srv.http_port}/v1/live") as ws:
            ready = _setup(ws, fps=2.0)
            assert ready["limits"]["max_fps"] == 30.0 and ready["session_id"].startswith("sess_")
            ws.send(encode_media(Audio(pcm_s16(0.5), "s16le", 16_000, 1, 0.0, 1)))
            ws.send(encode_media(Frame(jpeg_bytes(), "jpeg", None, None, 0.25, 2)))
            ws.send(json.dumps({"type": "ask", "seq": 3, "question": "what?", "request_id": "r1"}))
            out = _recv(ws, "answer_done")
            assert "".join(m["text"] for m in out if m["type"] == "answer_delta") == "the answer is forty two"
            assert out[-1]["finish_reason"] == "stop" and out[-1]["seq"] == 3
            ws.send(json.dumps({"type": "close", "seq": 4}))
            rest = []
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    rest.append(json.loads(ws.recv(timeout=5)))
            assert info.value.rcvd.code == 1000
            stats = rest[-1]
            assert stats["type"] == "stats" and stats["last_received_seq"] == 4
        assert stats["frames"] == 1 and stats["audio_s"] > 0.4
        status, text = _get(base + "/metrics")
        assert status == 200
        assert 'streamer_messages_total{type="frame"} 1.0' in text
        assert 'streamer_answers_total{finish_reason="stop"} 1.0' in text
        assert "streamer_ttft_seconds_count 1.0" in text and "streamer_sessions 0.0" in text


def test_auth_on(engine):
    with running_server(engine, api_key="s3cret") as srv:
        base, ws_url = f"http://127.0.0.1:{srv.http_port}", f"ws://127.0.0.1:{srv.http_port}/v1/live"
        assert _get(base + "/healthz")[0] == 200  # health never needs the key
        assert _get(base + "/metrics")[0] == 401
        assert _get(base + "/metrics", {"Authorization": "Bearer s3cret"})[0] == 200
        for bad in ({}, {"Authorization": "Bearer wrong"}):
            with pytest.raises(InvalidStatus) as info:
                connect(ws_url, additional_headers=bad, open_timeout=5)
            assert info.value.response.status_code == 401
        with pytest.raises(InvalidStatus):
            connect(ws_url + "?api_key=wrong", open_timeout=5)
        for url, headers in (
            (ws_url, {"Authorization": "Bearer s3cret"}),
            (ws_url, {"x-api-key": "s3cret"}),
            (ws_url + "?api_key=s3cret", {}),
        ):
            with connect(url, additional_headers=headers, open_timeout=5) as ws:
                _setup(ws)


def test_auth_off_accepts_anyone(engine):
    with running_server(engine) as srv, connect(f"ws://127.0.0.1:{srv.http_port}/v1/live") as ws:
        _setup(ws)


def test_message_size_limits(engine):
    limits = ServeLimits(max_message_bytes=64 << 10)
    with running_server(engine, limits=limits) as srv:
        with connect(f"ws://127.0.0.1:{srv.http_port}/v1/live", max_size=None) as ws:
            _setup(ws)
            ws.send(encode_media(Frame(b"\xff\xd8\xff" + b"\x00" * (100 << 10), "jpeg", None, None, 0.0, 1)))
            (err,) = _recv(ws, "error")
            assert err["code"] == "message_too_large" and err["seq"] == 1 and not err["fatal"]
            ws.send(json.dumps({"type": "text", "seq": 2, "text": "x" * (70 << 10)}))
            assert _recv(ws, "error")[-1]["code"] == "message_too_large"
            ws.send(json.dumps({"type": "ask", "seq": 3, "question": "still ok?"}))
            assert _recv(ws, "answer_done")[-1]["finish_reason"] == "stop"
            ws.send(b"\x00" * (200 << 10))  # over twice the limit: the server closes (1009)
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    ws.recv(timeout=5)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1009


def test_protocol_violation_closes_with_1008_and_leaves_others_alone(engine):
    with running_server(engine) as srv:
        url = f"ws://127.0.0.1:{srv.http_port}/v1/live"
        with connect(url) as good, connect(url) as bad:
            _setup(good)
            bad.send(json.dumps({"type": "ask", "seq": 1, "question": "no setup"}))
            err = json.loads(bad.recv(timeout=5))
            assert err["code"] == "protocol_violation" and err["fatal"]
            with pytest.raises(ConnectionClosed) as info:
                bad.recv(timeout=5)
            assert info.value.rcvd.code == 1008
            good.send("{not json")
            good.send(b"\x07")
            good.send(json.dumps({"type": "ask", "seq": 2, "question": "fine?"}))
            out = _recv(good, "answer_done")
            assert [m["code"] for m in out if m["type"] == "error"] == ["bad_message", "bad_header"]
            assert out[-1]["finish_reason"] == "stop"


def test_disconnect_mid_answer_cancels_it():
    engine = FakeEngine(" ".join(["word"] * 2000), step_delay_s=0.002)
    engine.start()
    try:
        with running_server(engine) as srv:
            with connect(f"ws://127.0.0.1:{srv.http_port}/v1/live") as ws:
                _setup(ws)
                ask = {"type": "ask", "seq": 1, "question": "talk", "sampling": {"max_new_tokens": 1000}}
                ws.send(json.dumps(ask))
                assert _recv(ws, "answer_delta")
            deadline = time.monotonic() + 5
            while engine.num_sessions and time.monotonic() < deadline:
                time.sleep(0.01)
            assert engine.num_sessions == 0
            tokens = engine.metrics.generated_tokens
            time.sleep(0.2)
            assert engine.metrics.generated_tokens == tokens < 1000
    finally:
        engine.stop()


def test_session_limit_over_websocket(engine):
    with running_server(engine, limits=ServeLimits(max_sessions=1)) as srv:
        url = f"ws://127.0.0.1:{srv.http_port}/v1/live"
        with connect(url) as first, connect(url) as second:
            _setup(first)
            second.send(json.dumps({"type": "setup", "seq": 0}))
            err = json.loads(second.recv(timeout=5))
            assert err["code"] == "session_limit" and err["fatal"]
            with pytest.raises(ConnectionClosed) as info:
                second.recv(timeout=5)
            assert info.value.rcvd.code == 1013


def test_a_web_dir_that_is_not_a_folder_is_an_input_error(engine, tmp_path):
    from streamer.engine.aio import AsyncEngine
    from streamer.errors import InputError
    from streamer.serve.app import create_app
    from streamer.serve.hub import LiveHub

    with pytest.raises(InputError, match="not a directory"):
        create_app(LiveHub(AsyncEngine(engine), ServeLimits()), web_dir=tmp_path / "missing")


def _live_ws_client(*args: str) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, str(root / "examples" / "live_ws_client.py"), *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip


def test_live_ws_client_example_streams_and_asks(engine, tmp_path):
    from streamer.media.synth import write_synthetic_recording

    video = write_synthetic_recording(tmp_path / "cam.mp4", minutes=0.05, size=(64, 48), fps=5)
    with running_server(engine) as srv:
        url = f"ws://127.0.0.1:{srv.http_port}/v1/live"
        done = _live_ws_client(str(video), "--url", url, "--ask", "1:What is it?", "--speed", "8")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the answer is forty two" in done.stdout and "stats: " in done.stdout


@pytest.mark.parametrize("case", ["missing file", "not media", "no server"])
def test_live_ws_client_example_user_errors_are_one_line(tmp_path, case):
    import socket

    from streamer.media.synth import write_synthetic_recording

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there
    (tmp_path / "notes.mp4").write_text("not a video\n")
    path, message = {
        "missing file": (tmp_path / "nope.mp4", "no such file"),
        "not media": (tmp_path / "notes.mp4", "not a media file"),
        "no server": (
            write_synthetic_recording(tmp_path / "cam.mp4", minutes=0.02, size=(64, 48), fps=5),
            "cannot connect to",
        ),
    }[case]
    done = _live_ws_client(str(path), "--url", f"ws://127.0.0.1:{port}/v1/live")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stdout + done.stderr
    assert lines[0].startswith("live_ws_client: error: ") and message in lines[0], done.stderr
