"""The demo model answers right through the live WebSocket endpoint too.

A real ``streamer serve --model <demo model>`` subprocess; each held-out clip is decoded here,
sent as the browser client sends it (1 fps JPEG frames, 100 ms s16le audio chunks, with their
media timestamps) and the five questions are asked one after another in the same session, as a
person at the browser would. JPEG compression and the live session's own layout are what differ
from ``streamer ask`` on the file (tests/demo/test_accuracy.py).
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
from serve.server_proc import serve_process
from websockets.sync.client import connect

from streamer.demo.dataset import materialize, recording_of
from streamer.demo.tasks import CLIP_CHOICES, CLIP_QUESTIONS, clip_answers
from streamer.demo.train import HELD_OUT_SEED
from streamer.media import SamplingPolicy, open_media
from streamer.media.image import encode_jpeg
from streamer.media.types import AudioFrames, VideoFrame
from streamer.serve.messages import Audio, Frame
from streamer.serve.ws import encode_media

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

CLIPS = [HELD_OUT_SEED + 100 + i for i in range(4)]
CHUNK = 1600  # 100 ms at 16 kHz


@pytest.fixture(scope="module")
def server(demo_model):
    env = {"STREAMER_HOME": os.environ.get("STREAMER_HOME", "")}
    with serve_process("--model", str(demo_model), "--threads", "1", env=env) as srv:
        yield srv


def _stream_clip(ws, path) -> int:
    """Send the clip's 1 fps frames and its audio in 100 ms chunks; the last ``seq`` used."""
    seq = 0
    pcm, pcm_t = np.zeros(0, np.float32), 0.0
    with open_media(str(path), SamplingPolicy.fixed_rate(1.0)) as media:
        for item in media.items():
            if isinstance(item, VideoFrame):
                seq += 1
                ws.send(encode_media(Frame(encode_jpeg(item.image), "jpeg", None, None, item.t_s, seq)))
            elif isinstance(item, AudioFrames):
                if not len(pcm):
                    pcm_t = item.t_s
                pcm = np.concatenate([pcm, item.waveform()])
                while len(pcm) >= CHUNK:
                    chunk, pcm = pcm[:CHUNK], pcm[CHUNK:]
                    data = (np.clip(chunk, -1, 1) * 32767).astype("<i2").tobytes()
                    seq += 1
                    ws.send(encode_media(Audio(data, "s16le", 16_000, 1, pcm_t, seq)))
                    pcm_t += CHUNK / 16_000
    return seq


def _ask(ws, question: str, seq: int) -> str:
    ws.send(json.dumps({"type": "ask", "seq": seq, "question": question, "request_id": f"q{seq}"}))
    text, deadline = [], time.monotonic() + 60
    while True:
        m = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if m["type"] == "error":
            raise AssertionError(m)
        if m["type"] == "answer_delta":
            text.append(m["text"])
        elif m["type"] == "answer_done":
            assert m["finish_reason"] == "stop", m
            return "".join(text).strip()


def test_clip_questions_over_the_websocket(server, tmp_path):
    right: dict[str, int] = dict.fromkeys(CLIP_QUESTIONS, 0)
    wrong = []
    for seed in CLIPS:
        spec = {"kind": "clip", "seed": seed}
        path, answers = materialize(spec, tmp_path), clip_answers(recording_of(spec))
        with connect(server.ws, max_size=None, open_timeout=10) as ws:
            ws.send(json.dumps({"type": "setup", "seq": 0, "fps": 1.0, "sampling": {"max_new_tokens": 8}}))
            assert json.loads(ws.recv(timeout=20))["type"] == "ready"
            seq = _stream_clip(ws, path)
            for i, (kind, question) in enumerate(CLIP_QUESTIONS.items()):
                got = _ask(ws, question, seq + 1 + i)
                right[kind] += got == answers[kind]
                if got != answers[kind]:
                    wrong.append((path.name, kind, answers[kind], got))
    accuracy = {k: n / len(CLIPS) for k, n in right.items()}
    # the two solved skills (tests/demo/test_accuracy.py measures them all on more clips)
    assert accuracy["colour"] >= 0.75 and accuracy["tone"] >= 0.75, (accuracy, wrong)
    for name, kind, _, got in wrong:
        assert got in CLIP_CHOICES[kind], (name, kind, got)
