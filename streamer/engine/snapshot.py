"""Save an idle session (its KV caches and bookkeeping) to one safetensors file, and restore it.

Used by ``summarize --resume``: a restored session continues bit for bit where the saved one
stood, so a resumed run gives the same tokens as an uninterrupted one. The file holds tensors
and a JSON header only (no pickle). A snapshot is refused for a session that is answering or
has input waiting, and a restore is refused into a model of another shape or dtype.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from streamer.engine.eviction import Unit, UnitKind
from streamer.engine.session import Session, SessionConfig
from streamer.errors import SessionError
from streamer.model.cache import FullKVCache, SlidingKVCache

if TYPE_CHECKING:
    from streamer.engine.engine import Engine

__all__ = ["save_session", "restore_session", "model_fingerprint"]

_FORMAT = "streamer-session-v1"
_BUFFERS = ("keys", "values", "seq_index", "positions", "block_ids")


def model_fingerprint(engine: Engine) -> str:
    """Shape, dtype and a weight sample of the engine's model: a snapshot only fits the same one."""
    cfg = engine.loaded.config.text
    h = hashlib.sha256()
    h.update(repr((cfg.layers, cfg.vocab_size, cfg.hidden_size, str(engine.loaded.dtype))).encode())
    h.update(engine.model.model.language_model.embed_tokens.weight[:4].float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def save_session(engine: Engine, session: Session, path: str | os.PathLike[str]) -> None:
    """Write ``session`` to ``path`` atomically (call between answers, with no input waiting)."""
    with engine._lock:
        slot = engine._slots.get(session.id)
        if slot is None:
            raise SessionError(f"session {session.id} is closed")
        with session._lock:
            if slot.answering is not None or session._inbox.units or session._held or session._audio_buf_len:
                raise SessionError(
                    "a session can be saved only when idle (no answer running, no input waiting)"
                )
            ctx = slot.context
            caches = ctx._ensure_caches()
            tensors: dict[str, torch.Tensor] = {}
            layers: dict[str, dict[str, int]] = {}
            for i, cache in enumerate(caches):
                if cache is None:
                    continue
                for name in _BUFFERS:
                    tensors[f"layer{i}.{name}"] = getattr(cache, name).contiguous().cpu()
                layers[str(i)] = (
                    {"length": cache.length}
                    if isinstance(cache, FullKVCache)
                    else {"next_slot": cache.next_slot, "filled": cache.filled}
                )
            header: dict[str, Any] = {
                "format": _FORMAT,
                "model": model_fingerprint(engine),
                "config": asdict(session.config),
                "policy": asdict(ctx.policy),
                "layers": layers,
                "units": [[int(u.kind), u.tokens, u.pinned, u.label] for u in ctx.units],
                "counters": [ctx.next_seq, ctx.next_pos, ctx.next_block, ctx.evicted_tokens, ctx.evictions],
                "builder": [session._builder.in_user_turn, session._builder._after_answer],
                "clock": [session._last_frame_t, session._audio_t, session._audio_buf_t],
            }
    target = Path(path)
    tmp = target.with_name(target.name + ".part")
    save_file(tensors, str(tmp), metadata={"streamer": json.dumps(header)})
    os.replace(tmp, target)


def restore_session(engine: Engine, path: str | os.PathLike[str]) -> Session:
    """Open a new session in ``engine`` holding the state saved in ``path``."""
    try:
        with safe_open(str(path), framework="pt") as f:
            header = json.loads((f.metadata() or {}).get("streamer", "{}"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise SessionError(f"{path}: not a readable session snapshot ({exc})") from exc
    if header.get("format") != _FORMAT:
        raise SessionError(f"{path}: not a streamer session snapshot")
    if header["model"] != model_fingerprint(engine):
        raise SessionError(f"{path}: saved with another model or dtype; it cannot be restored into this one")
    config = SessionConfig(**{**header["config"], "system_prompt": None})
    config.max_context_tokens = header["policy"]["capacity"]
    session = engine.open_session(config)
    session.config.system_prompt = header["config"]["system_prompt"]
    with engine._lock, session._lock:
        session._inbox.units.clear()  # the saved context replaces the fresh head
        session._inbox.pending_tokens = 0
        ctx = engine._slots[session.id].context
        caches = ctx._ensure_caches()
        for key, extra in header["layers"].items():
            cache = caches[int(key)]
            if cache is None:
                raise SessionError(f"{path}: layer {key} layout differs from this model")
            for name in _BUFFERS:
                getattr(cache, name).copy_(tensors[f"layer{key}.{name}"])
            if isinstance(cache, FullKVCache):
                cache.length = extra["length"]
            elif isinstance(cache, SlidingKVCache):
                cache.next_slot, cache.filled = extra["next_slot"], extra["filled"]
        ctx.units = [Unit(UnitKind(k), n, pinned=p, label=lbl) for k, n, p, lbl in header["units"]]
        ctx.next_seq, ctx.next_pos, ctx.next_block, ctx.evicted_tokens, ctx.evictions = header["counters"]
        session._builder.in_user_turn, session._builder._after_answer = header["builder"]
        session._last_frame_t, session._audio_t, session._audio_buf_t = header["clock"]
    return session
