"""G.711 telephony audio (μ-law and A-law, 8 bits per sample) as 16-bit PCM.

Realtime clients bridging phone calls send ``audio/pcmu`` or ``audio/pcma`` at 8 kHz; the
live decoders take ``s16le``, so these bytes are expanded with the ITU-T G.711 tables first
(the values equal Python's ``audioop.ulaw2lin`` / ``alaw2lin``). Pure numpy, no state.
"""

from __future__ import annotations

import numpy as np

__all__ = ["G711_RATE", "alaw_to_s16le", "ulaw_to_s16le"]

G711_RATE = 8_000  # Hz, the only rate G.711 is sent at


def _ulaw_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(u & 0x80, -magnitude, magnitude).astype("<i2")


def _alaw_table() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    )
    return np.where(a & 0x80, magnitude, -magnitude).astype("<i2")


_ULAW = _ulaw_table()  # int16 [256]
_ALAW = _alaw_table()  # int16 [256]


def ulaw_to_s16le(data: bytes) -> bytes:
    """μ-law bytes (one sample each) as little-endian 16-bit PCM (twice as many bytes)."""
    return _ULAW[np.frombuffer(data, dtype=np.uint8)].tobytes()


def alaw_to_s16le(data: bytes) -> bytes:
    """A-law bytes (one sample each) as little-endian 16-bit PCM (twice as many bytes)."""
    return _ALAW[np.frombuffer(data, dtype=np.uint8)].tobytes()
