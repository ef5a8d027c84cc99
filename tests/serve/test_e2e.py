"""End to end: a real ``streamer serve`` subprocess with the bundled model, on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from streamer.serve.messages import Audio, Frame
from streamer.serve.ws import encode_media

from .conftest import jpeg_bytes, pcm_s16
from .server_proc import ROOT, serve_process

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


@pytest.fixture(scope="module")
def server(bundled_dir):
    env = {"STREAMER_HOME": os.environ["STREAMER_HOME"]}
    with serve_process("--max-pending-tokens", "512", "--max-message-bytes", "262144", env=env) as srv:
        yield srv


def _get(url, headers=None):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _recv_until(ws, kind, timeout=60.0):
    out, deadline = [], time.monotonic() + timeout
    while True:
        out.append(json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic()))))
        if out[-1]["type"] == kind:
            return out


@contextlib.contextmanager
def _open(url, **setup):
    with connect(url, max_size=None, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "setup", "seq": 0, **setup}))
        ready = json.loads(ws.recv(timeout=20))
        assert ready["type"] == "ready", ready
        yield ws


def _metric(text, name):
    m = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else None


def test_live_session_with_the_bundled_model(server):
    assert json.loads(_get(server.http + "/healthz")[1])["status"] == "ok"
    with _open(server.ws, system_prompt="Watch.", fps=1.0, sampling={"max_new_tokens": 16}) as ws:
        seq = 1
        for second in range(3):
            ws.send(
                encode_media(
                    Audio(pcm_s16(1.0, rate=48_000, channels=2), "s16le", 48_000, 2, float(second), seq)
                )
            )
            ws.send(
                encode_media(
                    Frame(jpeg_bytes(160, 120, seed=second), "jpeg", None, None, second + 0.5, seq + 1)
                )
            )
            seq += 2
        ws.send(json.dumps({"type": "text", "seq": seq, "text": "The operator is Alice."}))
        ws.send(
            json.dumps(
                {"type": "ask", "seq": seq + 1, "question": "Is anyone there?", "choices": ["yes", "no"]}
            )
        )
        out = _recv_until(ws, "answer_done")
        done = out[-1]
        assert done["finish_reason"] == "choice" and done["seq"] == seq + 1, out
        assert "".join(m["text"] for m in out if m["type"] == "answer_delta") in ("yes", "no")
        ws.send(json.dumps({"type": "ask", "seq": seq + 2, "question": "Describe it.", "request_id": "free"}))
        out = _recv_until(ws, "answer_done")
        assert out[-1]["finish_reason"] in ("stop", "length") and out[-1]["tokens"] > 0
        assert out[-1]["ttft_s"] > 0 and out[-1]["request_id"] == "free"
        assert [m for m in out if m["type"] == "answer_delta"]
        ws.send(json.dumps({"type": "close", "seq": seq + 3}))
        rest = []
        with pytest.raises(ConnectionClosed):
            while True:
                rest.append(json.loads(ws.recv(timeout=10)))
        stats = rest[-1]
        assert stats["type"] == "stats" and stats["frames"] == 3 and stats["audio_s"] >= 2.9
        assert stats["context_tokens"] > 0 and stats["last_consumed_seq"] >= seq + 2
    _, metrics = _get(server.http + "/metrics")
    assert _metric(metrics, "streamer_generated_tokens_total") > 0
    assert _metric(metrics, 'streamer_answers_total{finish_reason="choice"}') >= 1


def test_every_error_path_keeps_the_session(server):
    bad_header = b"\x01\x09\x01\x01" + (7).to_bytes(4, "little") + b"\x00" * 16
    with _open(server.ws) as ws:
        cases = [
            ("{oops", "bad_message", None),
            (json.dumps({"type": "sing", "seq": 1}), "bad_message", 1),
            (json.dumps({"type": "ask", "seq": 2, "question": 3}), "bad_message", 2),
            (bad_header, "bad_header", 7),
            (
                encode_media(Frame(b"\xff\xd8\xff" + b"\x00" * 300_000, "jpeg", None, None, 0.0, 8)),
                "message_too_large",
                8,
            ),
            (encode_media(Frame(b"not an image", "jpeg", None, None, 0.0, 9)), "unsupported_media", 9),
            (encode_media(Frame(jpeg_bytes(5000, 8), "jpeg", None, None, 0.1, 10)), "unsupported_media", 10),
            (
                encode_media(Audio(pcm_s16(0.1, rate=4000), "s16le", 4000, 1, 0.0, 11)),
                "unsupported_media",
                11,
            ),
            (encode_media(Audio(b"\x00" * 3, "s16le", 16000, 1, 0.0, 12)), "invalid_input", 12),
            (encode_media(Frame(jpeg_bytes(), "jpeg", None, None, 5.0, 13)), None, None),
            (encode_media(Frame(jpeg_bytes(), "jpeg", None, None, 4.0, 14)), "invalid_input", 14),
            (json.dumps({"type": "text", "seq": 14, "text": "repeated seq"}), "bad_seq", 14),
            (json.dumps({"type": "text", "seq": 15, "text": "x" * 4000}), "queue_full", 15),
            (json.dumps({"type": "setup", "seq": 21}), "protocol_violation", 21),
        ]
        for payload, code, seq in cases[:-1]:
            ws.send(payload)
            if code is None:
                continue
            err = _recv_until(ws, "error")[-1]
            assert (err["code"], err["seq"], err["fatal"]) == (code, seq, False), (payload[:40], err)
        ws.send(
            json.dumps(
                {"type": "ask", "seq": 20, "question": "still there?", "sampling": {"max_new_tokens": 4}}
            )
        )
        assert _recv_until(ws, "answer_done")[-1]["finish_reason"] in ("stop", "length")
        ws.send(cases[-1][0])  # a protocol violation: the connection closes
        err = _recv_until(ws, "error")[-1]
        assert err["code"] == "protocol_violation" and err["fatal"]
        with pytest.raises(ConnectionClosed) as info:
            while True:
                ws.recv(timeout=10)
        assert info.value.rcvd.code == 1008


def test_disconnect_mid_answer_cancels_it_and_others_go_on(server):
    with _open(server.ws) as other:
        with _open(server.ws) as ws:
            ws.send(
                json.dumps(
                    {"type": "ask", "seq": 1, "question": "talk", "sampling": {"max_new_tokens": 1000}}
                )
            )
            _recv_until(ws, "answer_delta")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            _, metrics = _get(server.http + "/metrics")
            if _metric(metrics, "streamer_sessions") == 1.0:
                break
            time.sleep(0.05)
        assert _metric(metrics, "streamer_sessions") == 1.0
        before = _metric(metrics, "streamer_generated_tokens_total")
        previous, deadline = -1.0, time.monotonic() + 10  # a step in flight may still finish
        while time.monotonic() < deadline:
            _, metrics = _get(server.http + "/metrics")
            tokens = _metric(metrics, "streamer_generated_tokens_total")
            if tokens == previous:
                break
            previous = tokens
            time.sleep(0.3)
        assert tokens == previous and tokens - before <= 2  # decoding stopped, not run to 1000 tokens
        other.send(
            json.dumps({"type": "ask", "seq": 1, "question": "fine?", "sampling": {"max_new_tokens": 4}})
        )
        assert _recv_until(other, "answer_done")[-1]["tokens"] > 0


def test_auth_on(bundled_dir):
    env = {"STREAMER_HOME": os.environ["STREAMER_HOME"], "STREAMER_API_KEY": "k3y"}
    with serve_process(env=env) as srv:
        with pytest.raises(InvalidStatus) as info:
            connect(srv.ws, open_timeout=10)
        assert info.value.response.status_code == 401
        assert _get(srv.http + "/metrics")[0] == 401
        assert _get(srv.http + "/metrics", {"x-api-key": "k3y"})[0] == 200
        with connect(srv.ws, additional_headers={"Authorization": "Bearer k3y"}, open_timeout=10) as ws:
            ws.send(json.dumps({"type": "setup", "seq": 0}))
            assert json.loads(ws.recv(timeout=20))["type"] == "ready"


def test_sigterm_drains(bundled_dir):
    env = {"STREAMER_HOME": os.environ["STREAMER_HOME"]}
    with serve_process("--grace-s", "20", env=env) as srv:
        out = []
        with _open(srv.ws) as ws:
            ws.send(
                json.dumps({"type": "ask", "seq": 1, "question": "talk", "sampling": {"max_new_tokens": 48}})
            )
            _recv_until(ws, "answer_delta")
            started = time.monotonic()
            srv.proc.send_signal(15)
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    out.append(json.loads(ws.recv(timeout=30)))
        kinds = [m["type"] for m in out]
        assert "go_away" in kinds and kinds.index("go_away") < kinds.index("answer_done")
        done = next(m for m in out if m["type"] == "answer_done")
        assert done["finish_reason"] == "length" and done["tokens"] == 48  # finished within the grace period
        assert out[-1]["type"] == "error" and out[-1]["code"] == "going_away" and out[-1]["fatal"]
        assert info.value.rcvd.code == 1001
        assert srv.proc.wait(30) == 0 and time.monotonic() - started < 20


def test_sigterm_cancels_answers_after_the_grace_period():
    with serve_process("--fake", "--grace-s", "0.3") as srv:
        out = []
        with _open(srv.ws) as ws:
            long_question = " ".join(["word"] * 500)  # the fake engine answers "You asked: <question>"
            ask = {"type": "ask", "seq": 2, "question": long_question, "sampling": {"max_new_tokens": 1000}}
            ws.send(json.dumps(ask))
            _recv_until(ws, "answer_delta")
            srv.proc.send_signal(15)
            with pytest.raises(ConnectionClosed):
                while True:
                    out.append(json.loads(ws.recv(timeout=30)))
        done = next(m for m in out if m["type"] == "answer_done")
        assert done["finish_reason"] in ("cancelled", "closed")
        assert srv.proc.wait(30) == 0


def test_non_loopback_without_a_key_refuses_to_start():
    env = {k: v for k, v in os.environ.items() if k != "STREAMER_API_KEY"}
    env["PYTHONPATH"] = str(ROOT)
    r = subprocess.run(
        [sys.executable, "-m", "streamer", "serve", "--host", "0.0.0.0", "--fake", "--no-grpc"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 1
    assert r.stderr.strip().startswith(
        "streamer serve: error: refusing to listen on 0.0.0.0 without an API key"
    )


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--tls-cert", "{text}", "--tls-key", "{text}"], "not a PEM certificate chain and its private key"),
        (["--tls-cert", "{missing}", "--tls-key", "{text}"], "--tls-cert {missing}: no such file"),
        (["--tls-cert", "{text}", "--tls-key", "{dir}"], "--tls-key {dir}: no such file"),
        (["--tls-cert", "{text}"], "--tls-cert and --tls-key go together"),
        (["--web-dir", "{missing}"], "--web-dir {missing}: not a directory"),
        (["--web-dir", "{text}"], "--web-dir {text}: not a directory"),
        (["--summarize-dir", "{missing}"], "--summarize-dir {missing}: not a directory"),
    ],
)
def test_bad_tls_files_or_web_dir_are_one_line_before_the_model_loads(tmp_path, flags, message):
    text = tmp_path / "notes.pem"
    text.write_text("this is not a certificate\n")
    subs = {"{text}": str(text), "{missing}": str(tmp_path / "nope"), "{dir}": str(tmp_path)}
    for key, value in subs.items():
        flags = [f.replace(key, value) for f in flags]
        message = message.replace(key, value)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STREAMER_MODEL": str(tmp_path / "no-model-here")}
    r = subprocess.run(
        [sys.executable, "-m", "streamer", "serve", "--http-port", "0", "--no-grpc", *flags],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("streamer serve: error: ") and message in lines[0], (
        r.stderr
    )
