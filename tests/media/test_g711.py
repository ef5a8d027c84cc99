"""G.711 expansion equals the ITU tables (as Python's audioop has them, while it exists)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from streamer.media.g711 import alaw_to_s16le, ulaw_to_s16le


def test_known_values():
    ulaw = np.frombuffer(ulaw_to_s16le(bytes([0x00, 0x7F, 0x80, 0xFF])), "<i2")
    assert ulaw.tolist() == [-32124, 0, 32124, 0]
    alaw = np.frombuffer(alaw_to_s16le(bytes([0x55, 0xD5, 0x2A, 0xAA])), "<i2")
    assert alaw.tolist() == [-8, 8, -32256, 32256]
    assert ulaw_to_s16le(b"") == b""


def test_every_byte_matches_audioop():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # removed in Python 3.13
    every = bytes(range(256))
    assert ulaw_to_s16le(every) == audioop.ulaw2lin(every, 2)
    assert alaw_to_s16le(every) == audioop.alaw2lin(every, 2)
