"""The WebSocket ``/v1/realtime`` adapter: JSON text events in and out of one RealtimeProtocol.

What the official ``openai`` SDK's realtime client sends, and what this accepts:

* the URL ``{websocket_base_url}/realtime?model=NAME`` (``websocket_base_url`` = ``ws://HOST:PORT/v1``);
  ``model`` is echoed in the session, any other query parameter is ignored;
* the key as ``Authorization: Bearer KEY`` (also ``x-api-key``, ``?api_key=``, and the browser
  form: the WebSocket subprotocols ``realtime`` and ``openai-insecure-api-key.KEY``), checked with
  :class:`~streamer.serve.auth.ApiKeyAuth` like every other endpoint; a refusal is HTTP 401;
* text messages, one JSON event each (:mod:`streamer.serve.realtime`).

:func:`realtime_endpoint` builds the Starlette WebSocket endpoint; :func:`run_realtime_websocket`
is the only code here that touches a socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from streamer import jsonio
from streamer.serve.auth import ApiKeyAuth
from streamer.serve.hub import LiveHub
from streamer.serve.realtime import RealtimeProtocol
from streamer.serve.ws import WS_CLOSE_CODES, end_connection, refuse_unauthorized

__all__ = ["SUBPROTOCOL", "KEY_SUBPROTOCOL", "realtime_endpoint", "run_realtime_websocket"]

SUBPROTOCOL = "realtime"  # what browsers offer (and are answered with)
KEY_SUBPROTOCOL = "openai-insecure-api-key."  # + the key: how a browser passes it without headers


def _subprotocol_key(offered: list[str]) -> str | None:
    for proto in offered:
        if proto.startswith(KEY_SUBPROTOCOL) and len(proto) > len(KEY_SUBPROTOCOL):
            return proto[len(KEY_SUBPROTOCOL) :]
    return None


def realtime_endpoint(hub: LiveHub, auth: ApiKeyAuth) -> Callable[[Any], Awaitable[None]]:
    """The ASGI WebSocket endpoint for ``/v1/realtime`` (mount with ``WebSocketRoute``)."""

    async def endpoint(websocket: Any) -> None:
        offered = list(websocket.scope.get("subprotocols") or [])
        key = _subprotocol_key(offered)
        allowed = auth.check(websocket.headers, websocket.query_params) or (
            key is not None and auth.check({"authorization": f"Bearer {key}"})
        )
        if not allowed:
            await refuse_unauthorized(websocket, hub)
            return
        await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        client = websocket.client
        peer = f"{client.host}:{client.port}" if client is not None else ""
        await run_realtime_websocket(websocket, hub, peer, websocket.query_params.get("model"))

    return endpoint


async def run_realtime_websocket(
    websocket: Any, hub: LiveHub, peer: str = "", model: str | None = None
) -> None:
    """Serve one accepted Starlette WebSocket with a RealtimeProtocol until either side ends it."""
    proto = RealtimeProtocol(hub, peer, model)
    await proto.start()
    writer = asyncio.create_task(_write(websocket, proto))
    gone = False
    try:
        while not proto.finished:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                gone = True
                break
            await proto.receive(message.get("text"), message.get("bytes"))
    except Exception:  # the socket failed under us (the protocol raises nothing): the peer is gone
        gone = True
    finally:
        await end_connection(proto, writer, gone)


async def _write(websocket: Any, proto: RealtimeProtocol) -> None:
    try:
        while (ev := await proto.next_event()) is not None:
            await websocket.send_text(jsonio.dumps(ev, ensure_ascii=False, separators=(",", ":")))
        reason = proto.close_reason
        if reason is not None:
            await websocket.close(code=WS_CLOSE_CODES[reason], reason=reason.value)
    except (OSError, RuntimeError):  # the peer is gone; the reader notices and cleans up
        pass
    except Exception as exc:  # starlette's WebSocketDisconnect and friends
        if type(exc).__name__ not in ("WebSocketDisconnect", "ClientDisconnected", "ConnectionClosed"):
            raise
