"""Text at the edges: user text must be valid Unicode; file names may not be.

On POSIX a file name is bytes. Python hands names that are not UTF-8 over as ``str`` with lone
surrogates (``'caf\\udce9.mp4'``, PEP 383): such a string opens the file fine but cannot be
encoded as UTF-8, so it must never be written into JSON, Markdown or a terminal as is.

* :func:`display` — a name (or any text) fit to print or write: undecodable bytes become U+FFFD.
* :func:`path_bytes` — the exact bytes of a path, for a state file that must find it again.
* :func:`invalid_utf8` — where user text is not valid Unicode (for a one-line error), or None.
"""

from __future__ import annotations

import os

__all__ = ["display", "path_bytes", "invalid_utf8"]


def display(value: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> str:
    """``value`` as printable UTF-8-safe text: invalid bytes and lone surrogates become U+FFFD."""
    raw = os.fspath(value)
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    try:
        return raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate that no undecodable byte produced
        return raw.encode("utf-8", "replace").decode("utf-8")


def path_bytes(path: str | os.PathLike[str]) -> bytes:
    """The file system's bytes for ``path`` (round-trips any name: ``os.fsdecode`` gives it back)."""
    return os.fsencode(path)


def invalid_utf8(value: str) -> str | None:
    """None for valid Unicode text, else ``"byte 0xe9 at character 3"`` naming the first bad spot."""
    for i, ch in enumerate(value):
        code = ord(ch)
        if 0xD800 <= code <= 0xDFFF:
            if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of argv or a file name (surrogateescape)
                return f"byte 0x{code - 0xDC00:02x} at character {i + 1}"
            return f"lone surrogate U+{code:04X} at character {i + 1}"
    return None
