"""The one exception tree of streamer.

    StreamerError                 root: everything streamer raises on purpose
    ├── ConfigError               a checkpoint config field is missing, unknown or unsupported
    ├── CheckpointError           weights missing, unexpected, wrong-shaped, truncated or unreadable
    ├── TokenizerError            tokenizer.json / chat template missing or unusable
    ├── MediaError                media cannot be opened or decoded at all
    │   └── UnsupportedMediaError     a codec, container, size or rate outside what is accepted
    ├── InputError                a request is malformed (bad shape, order, size, value)
    │   └── ProtocolError             a client message breaks the wire protocol (carries a stable code)
    ├── OutputError               an output cannot be written (a device or folder, read-only, full)
    └── SessionError              a session is closed, cancelled or over its limits

Library errors (PyAV, safetensors, tokenizers, jinja2, grpc) are converted at the boundary with
``raise XError(...) from exc``. The CLI prints ``str(error)`` on one line and exits non-zero.
"""

from __future__ import annotations

__all__ = [
    "StreamerError",
    "ConfigError",
    "CheckpointError",
    "TokenizerError",
    "MediaError",
    "UnsupportedMediaError",
    "InputError",
    "ProtocolError",
    "OutputError",
    "SessionError",
]


class StreamerError(Exception):
    """Root of every error streamer raises on purpose; its message is fit for a user."""


class ConfigError(StreamerError):
    """A checkpoint's config.json names a field or value streamer cannot honour."""


class CheckpointError(StreamerError):
    """Weights cannot be loaded: missing/unexpected/wrong-shaped tensors, truncated or absent files."""


class TokenizerError(StreamerError):
    """The tokenizer or chat template of a checkpoint is missing or unusable."""


class MediaError(StreamerError):
    """A media file or chunk cannot be opened or decoded."""


class UnsupportedMediaError(MediaError):
    """Media outside what streamer accepts: codec, container, dimensions, sample rate, size."""


class InputError(StreamerError):
    """A request is malformed: wrong shape, out-of-order timestamp, size over a limit, bad value.

    ``field`` names the refused setting where the raiser knows it (``"max_context_tokens"``), else None.
    """

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class ProtocolError(InputError):
    """A client message that cannot be understood: bad JSON, unknown type, bad field, bad header.

    ``code`` is the stable wire code (``streamer.serve.messages.WireCode``) and ``seq`` the
    message's sequence number when it could be read.
    """

    def __init__(self, message: str, code: str = "bad_message", seq: int | None = None):
        super().__init__(message)
        self.code = code
        self.seq = seq


class OutputError(StreamerError):
    """An output path cannot be written: it is a device, FIFO or folder, read-only, or the disk is full."""


class SessionError(StreamerError):
    """A session cannot do what was asked: it is closed, cancelled or over its limits."""
