"""Save an idle session (its KV caches and bookkeeping) to one safetensors file, and restore it.

Used by ``summarize --resume``: a restored session continues bit for bit where the saved one
stood, so a resumed run gives the same tokens as an uninterrupted one. The file holds tensors
and a JSON header only (no pickle), plus a SHA-256 over both that is checked before anything
is restored: a damaged snapshot is refused, never half-used. A snapshot is refused for a
session that is answering or has input waiting, and a restore into a model of another shape,
dtype or weights (the checkpoint fingerprint of :mod:`streamer.model.fingerprint`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from streamer import jsonio
from streamer.engine.engine import SessionSnapshot
from streamer.engine.session import Session
from streamer.errors import SessionError

if TYPE_CHECKING:
    from streamer.engine.engine import Engine

__all__ = ["save_session", "restore_session"]

_FORMAT = "streamer-session-v2"


def _checksum(tensors: dict[str, torch.Tensor], header_json: str) -> str:
    h = hashlib.sha256(header_json.encode("utf-8"))
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(repr(tuple(t.shape)).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_session(engine: Engine, session: Session, path: str | os.PathLike[str]) -> None:
    """Write ``session`` to ``path`` atomically (call between answers, with no input waiting)."""
    snapshot = engine.export_session(session)
    header = {"format": _FORMAT, "model": engine.fingerprint(), **snapshot.header}
    header_json = jsonio.dumps(header, sort_keys=True)
    metadata = {"streamer": header_json, "sha256": _checksum(snapshot.tensors, header_json)}
    target = Path(path)
    tmp = target.with_name(target.name + ".part")
    try:
        save_file(snapshot.tensors, str(tmp), metadata=metadata)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def restore_session(engine: Engine, path: str | os.PathLike[str]) -> Session:
    """Open a new session in ``engine`` holding the state saved in ``path``."""
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
    except (SafetensorError, OSError, ValueError) as exc:
        raise SessionError(f"{path}: not a readable session snapshot ({exc})") from exc
    header_json = metadata.get("streamer", "")
    try:
        header = jsonio.loads(header_json)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise SessionError(f"{path}: not a streamer session snapshot (or one of another version)")
    if metadata.get("sha256") != _checksum(tensors, header_json):
        raise SessionError(f"{path}: the snapshot is damaged (its checksum does not match)")
    if header.get("model") != engine.fingerprint():
        raise SessionError(f"{path}: saved with another model or dtype; it cannot be restored into this one")
    return engine.import_session(SessionSnapshot(tensors, header))
