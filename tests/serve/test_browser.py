"""The browser client in real headless Chromium (fake camera + microphone) against ``streamer serve``.

Chromium comes from Debian (``.ci/run`` installs it); the test is skipped only when no Chromium
binary exists at all, and says so.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path

import pytest

from .server_proc import serve_process

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

CHROMIUM = os.environ.get("STREAMER_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("STREAMER_SCREENSHOTS", "out/screenshots"))


def _have_chromium() -> bool:
    return os.path.exists(CHROMIUM) or shutil.which("chromium") is not None


@pytest.mark.skipif(not _have_chromium(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
def test_page_streams_asks_and_shows_an_answer(bundled_dir, tmp_path):
    from playwright.sync_api import sync_playwright

    env = {"STREAMER_HOME": os.environ["STREAMER_HOME"]}
    with serve_process("--stats-interval-s", "0.5", env=env) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
            args=[
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                "--autoplay-policy=no-user-gesture-required",
                "--no-sandbox",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            console: list[str] = []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            page.goto(server.http + "/")
            page.fill("#fps", "2")
            page.fill("#max-tokens", "24")
            page.click("#start")
            page.wait_for_selector("#status.live", timeout=30_000)
            # stream for a while: frames at 2 fps, audio in 100 ms chunks
            page.wait_for_function(
                "window.streamer.framesSent >= 4 && window.streamer.audioChunksSent >= 20", timeout=30_000
            )
            page.wait_for_function(
                "window.streamer.stats && window.streamer.stats.frames >= 2 && window.streamer.stats.audio_s >= 1",
                timeout=30_000,
            )
            page.fill("#question", "What is on the camera?")
            page.click("#ask")
            page.wait_for_function("window.streamer.answers.length >= 1", timeout=60_000)
            answer = page.evaluate("window.streamer.answers[0]")
            page.wait_for_function("window.streamer.stats.frames >= 3", timeout=30_000)
            stats = page.evaluate("window.streamer.stats")
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "browser-client.png"))
            shown = page.inner_text("#answer")
            errors = page.evaluate("window.streamer.errors")
            page.click("#stop")
            page.wait_for_selector("#status.idle", timeout=10_000)
        finally:
            browser.close()
        with urllib.request.urlopen(server.http + "/metrics", timeout=10) as r:
            metrics = r.read().decode()
    assert not [c for c in console if c.startswith(("error", "pageerror"))], console
    assert errors == [], errors
    assert answer["done"]["finish_reason"] in ("stop", "length"), answer
    assert answer["done"]["tokens"] > 0 and answer["text"].strip() and shown.strip() == answer["text"].strip()
    # the server's own figures: frames and audio arrived and went into the context
    assert stats["frames"] >= 3 and stats["audio_s"] >= 1.0, json.dumps(stats)
    assert stats["context_tokens"] > 0 and stats["dropped_frames"] == 0
    assert (
        'streamer_messages_total{type="frame"}' in metrics
        and 'streamer_messages_total{type="audio"}' in metrics
    )
