"""Session snapshots through the public export/import: exact, checked, refused when damaged."""

from __future__ import annotations

import numpy as np
import pytest

from streamer.engine import Engine, SamplingParams, SessionConfig
from streamer.engine.snapshot import restore_session, save_session
from streamer.errors import SessionError


def _fill(session, rng):
    for sec in range(3):
        session.push_frame(rng.integers(0, 256, (48, 80, 3), dtype=np.uint8), float(sec))
        session.push_audio((rng.standard_normal(16_000) * 0.1).astype(np.float32), float(sec))
    session.ask("so far?", SamplingParams(max_new_tokens=3)).result(timeout=30)


def test_restore_continues_bit_for_bit_and_damage_is_refused(bundled, tmp_path):
    loaded, tok = bundled
    engine = Engine(loaded, tok)
    engine.start()
    try:
        s = engine.open_session(SessionConfig(system_prompt="Watch.", max_context_tokens=2048))
        _fill(s, np.random.default_rng(0))
        assert s.wait_idle(30)
        path = tmp_path / "s.safetensors"
        save_session(engine, s, path)
        saved_tokens = s.stats().context_tokens
        tail = np.random.default_rng(1).integers(0, 256, (48, 80, 3), dtype=np.uint8)
        s.push_frame(tail, 3.0)
        want = s.ask("and now?", SamplingParams(max_new_tokens=8)).result(timeout=30)

        restored = restore_session(engine, path)
        assert restored.stats().context_tokens == saved_tokens
        restored.push_frame(tail, 3.0)
        got = restored.ask("and now?", SamplingParams(max_new_tokens=8)).result(timeout=30)
        assert got.token_ids == want.token_ids and got.context_tokens == want.context_tokens
        with pytest.raises(Exception, match="out-of-order"):  # the clock came back too
            restored.push_frame(tail, 1.0)

        data = bytearray(path.read_bytes())
        data[-100] ^= 0xFF  # one flipped bit deep in the tensor bytes
        damaged = tmp_path / "damaged.safetensors"
        damaged.write_bytes(bytes(data))
        with pytest.raises(SessionError, match="damaged"):
            restore_session(engine, damaged)

        busy = engine.open_session(SessionConfig(max_context_tokens=2048))
        busy.pause_prefill()
        busy.push_text("waiting")
        with pytest.raises(SessionError, match="idle"):
            save_session(engine, busy, tmp_path / "busy.safetensors")
    finally:
        engine.stop()
