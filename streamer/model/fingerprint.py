"""A checkpoint's identity: a hash over every byte that shapes the model's tokens.

:func:`checkpoint_fingerprint` hashes (SHA-256, read in blocks) ``config.json``, every weight
file (``model.safetensors``, or the index and every shard it names), and the files that shape
the text: ``tokenizer.json``, ``tokenizer_config.json``, ``chat_template.jinja`` and
``generation_config.json`` (those present), together with the dtype the weights run in. Any
changed byte gives another fingerprint: a fine-tune with the same shapes is another model.

Hashing a 24 GB checkpoint takes a minute, so each file's digest is cached in
``$STREAMER_HOME/fingerprints.json`` keyed by its absolute path, size, mtime, ctime and inode;
a file rewritten in any way is hashed again. The cache is an optimisation only: when it is
unreadable or cannot be written, files are simply hashed again next time.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from streamer import jsonio
from streamer.errors import CheckpointError, OutputError
from streamer.model.bundled import streamer_home
from streamer.outputs import atomic_write_text
from streamer.text import display

__all__ = ["checkpoint_fingerprint", "checkpoint_files", "CACHE_NAME"]

CACHE_NAME = "fingerprints.json"
_CACHE_FORMAT = "streamer-fingerprints-v1"
_CACHE_ENTRIES = 512  # files remembered (the most recently hashed)
_BLOCK = 8 << 20  # bytes read at a time
_TEXT_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json")


def checkpoint_files(path: str | os.PathLike[str]) -> list[Path]:
    """The files :func:`checkpoint_fingerprint` hashes, in a fixed order (CheckpointError if incomplete)."""
    root = Path(path)
    files = [root / "config.json"]
    index, single = root / "model.safetensors.index.json", root / "model.safetensors"
    if index.is_file():
        try:
            weight_map = jsonio.loads(index.read_text(encoding="utf-8"))["weight_map"]
            shards = sorted({str(v) for v in weight_map.values()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"{display(index)} is not a valid safetensors index: {exc}") from exc
        files += [index, *(root / s for s in shards)]
    elif single.is_file():
        files.append(single)
    else:
        raise CheckpointError(f"{display(root)}: no model.safetensors or model.safetensors.index.json")
    files += [root / name for name in _TEXT_FILES if (root / name).is_file()]
    missing = [display(f.name) for f in files if not f.is_file()]
    if missing:
        raise CheckpointError(f"{display(root)}: missing file(s): {', '.join(missing)}")
    return files


def checkpoint_fingerprint(path: str | os.PathLike[str], dtype: str) -> str:
    """Hex SHA-256 over the checkpoint's files (see the module docstring) and ``dtype``.

    ``dtype`` is the dtype the weights are loaded in (``"bfloat16"`` or ``"torch.bfloat16"``).
    Raises CheckpointError when a file is missing or unreadable.
    """
    root = Path(path).resolve()
    cache = _Cache(streamer_home() / CACHE_NAME)
    h = hashlib.sha256(f"dtype={str(dtype).removeprefix('torch.')}\n".encode())
    for file in checkpoint_files(root):
        h.update(os.fsencode(file.relative_to(root)) + b"\0" + cache.digest(file).encode() + b"\n")
    cache.save()
    return h.hexdigest()


def _sha256(file: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(file, "rb") as f:
            while block := f.read(_BLOCK):
                h.update(block)
    except OSError as exc:
        raise CheckpointError(f"{display(file)}: cannot read: {exc.strerror or exc}") from exc
    return h.hexdigest()


class _Cache:
    """File digests by (path, size, mtime_ns, ctime_ns, inode), in one small JSON file."""

    def __init__(self, where: Path) -> None:
        self.where = where
        self.entries: dict[str, dict[str, Any]] = {}
        self.dirty = False
        try:
            data = jsonio.loads(where.read_text(encoding="utf-8"))
            if (
                isinstance(data, dict)
                and data.get("format") == _CACHE_FORMAT
                and isinstance(data.get("files"), dict)
            ):
                self.entries = {k: v for k, v in data["files"].items() if isinstance(v, dict)}
        except (OSError, ValueError):
            pass  # no cache yet, or a damaged one: hash again

    def digest(self, file: Path) -> str:
        try:
            st = file.stat()
        except OSError as exc:
            raise CheckpointError(f"{display(file)}: cannot read: {exc.strerror or exc}") from exc
        key = os.fsencode(file).hex()
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        entry = self.entries.get(key)
        if entry is not None and entry.get("stamp") == stamp and isinstance(entry.get("sha256"), str):
            self.entries[key] = self.entries.pop(key)  # most recently used last
            return entry["sha256"]
        digest = _sha256(file)
        self.entries.pop(key, None)
        self.entries[key] = {"stamp": stamp, "sha256": digest}
        self.dirty = True
        return digest

    def save(self) -> None:
        if not self.dirty:
            return
        files = dict(list(self.entries.items())[-_CACHE_ENTRIES:])
        try:
            atomic_write_text(self.where, jsonio.dumps({"format": _CACHE_FORMAT, "files": files}))
        except OutputError:
            pass  # a read-only home: the digests are computed again next time
