"""Where streamer writes files: regular files only, checked before any work, written atomically.

* :func:`check_output_file` / :func:`check_output_dir` — call before any model work: they raise
  :class:`~streamer.errors.OutputError` unless the path can be written (the folder is created
  and a probe file written and removed in it).
* :func:`atomic_write_text` — a temporary file in the same folder, fsync, rename; the temporary
  is removed on any failure, so a reader (or a crash) never sees half a file.

A path that exists as something else than a regular file — a directory, a FIFO, a character or
block device, a socket — is refused by name (``os.replace`` onto ``/dev/null`` would replace the
device node with a regular file). A symlink is followed: the file it points to is written.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from streamer.errors import OutputError
from streamer.text import display

__all__ = ["atomic_write_bytes", "atomic_write_text", "check_output_dir", "check_output_file", "file_kind"]

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def file_kind(path: str | os.PathLike[str]) -> str | None:
    """What ``path`` is when it exists and is not a regular file (``"a character device"``), else None."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return next((name for test, name in _KINDS if test(mode)), None)


def _target(path: str | os.PathLike[str]) -> Path:
    """``path``, or where it points when it is a symlink."""
    return Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def check_output_dir(path: str | os.PathLike[str], *, create: bool = True) -> Path:
    """Create the folder ``path`` if needed and prove a file can be written in it; OutputError if not.

    ``create=False``: a folder that does not exist yet is not created; its parent is checked instead.
    """
    folder = Path(path)
    kind = file_kind(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{display(folder)} is {kind or 'a file'}, not a directory")
    if not create and not folder.exists():
        check_output_dir(folder.parent)
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder {display(folder)}: {_why(exc)}") from exc
    try:
        fd, probe = tempfile.mkstemp(prefix=".streamer-write-check-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"cannot write in {display(folder)}: {_why(exc)}") from exc
    return folder


def check_output_file(path: str | os.PathLike[str]) -> Path:
    """OutputError unless ``path`` is (or can become) a regular file we can write; returns the target."""
    target = _target(path)
    kind = file_kind(target)
    if kind is not None:
        raise OutputError(f"{display(path)} is {kind}, not a regular file: refusing to write over it")
    check_output_dir(target.parent)
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same folder + rename."""
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder + rename."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    target = check_output_file(path)
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        kind = file_kind(target)  # again: it may have become a device or folder meanwhile
        if kind is not None:
            raise OutputError(f"{display(path)} is {kind}, not a regular file: refusing to write over it")
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise OutputError(f"cannot write {display(path)}: {_why(exc)}") from exc
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return target
