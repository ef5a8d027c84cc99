"""The HTTP side of ``streamer serve``: one ASGI (Starlette) app.

    GET /          the browser client (frontends/web), no build step
    GET /healthz   the engine's health as JSON (200 ok / 503 otherwise); never needs a key
    GET /metrics   Prometheus text (needs the key when one is set)
    WS  /v1/live   the live protocol (streamer.serve.ws); the key in a header or ?api_key=
    WS  /v1/realtime  the OpenAI Realtime protocol (streamer.serve.realtime_ws), same key rules

The app owns no engine: it is built around a :class:`~streamer.serve.live.LiveHub`, so the
same app can be served by uvicorn here or mounted as a Ray Serve (FastAPI/ASGI) ingress.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from streamer.errors import InputError
from streamer.serve.auth import ApiKeyAuth
from streamer.serve.hub import LiveHub
from streamer.serve.metrics import CONTENT_TYPE, ServeMetrics
from streamer.serve.realtime_ws import realtime_endpoint
from streamer.serve.ws import refuse_unauthorized, run_live_websocket

__all__ = ["create_app", "default_web_dir"]


def default_web_dir() -> Path | None:
    """``frontends/web`` of this checkout, or None when the package is installed without it."""
    here = Path(__file__).resolve().parents[2] / "frontends" / "web"
    return here if (here / "index.html").is_file() else None


def create_app(
    hub: LiveHub,
    auth: ApiKeyAuth | None = None,
    metrics: ServeMetrics | None = None,
    web_dir: str | Path | None = None,
) -> Starlette:
    """The ASGI app over ``hub`` (``metrics`` becomes the hub's observer when given)."""
    auth = auth or ApiKeyAuth(None)
    if metrics is not None:
        metrics.attach(hub)
        hub.observer = metrics
    web = Path(web_dir) if web_dir is not None else default_web_dir()
    if web is not None and not web.is_dir():  # starlette would raise a bare RuntimeError
        raise InputError(f"web_dir {web}: not a directory")

    async def healthz(request: Request) -> Response:
        h = hub.engine.health()
        body: dict[str, Any] = {
            "status": "draining" if hub.draining and h.ok else h.status,
            "reason": h.reason,
            "sessions": h.sessions,
            "live_connections": len(hub.connections),
            "steps": h.steps,
            "step_errors": h.step_errors,
            "last_step_age_s": h.last_step_age_s,
        }
        return JSONResponse(body, status_code=200 if h.ok and not hub.draining else 503)

    async def prometheus(request: Request) -> Response:
        if not auth.check(request.headers, request.query_params):
            return PlainTextResponse(
                "unauthorized\n", status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        if metrics is None:
            return PlainTextResponse("metrics are off\n", status_code=404)
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    async def live(websocket: WebSocket) -> None:
        if not auth.check(websocket.headers, websocket.query_params):
            await refuse_unauthorized(websocket, hub)
            return
        await websocket.accept()
        client = websocket.client
        peer = f"{client.host}:{client.port}" if client is not None else ""
        await run_live_websocket(websocket, hub, peer)

    routes: list[Any] = [
        Route("/healthz", healthz),
        Route("/metrics", prometheus),
        WebSocketRoute("/v1/live", live),
        WebSocketRoute("/v1/realtime", realtime_endpoint(hub, auth)),  # OpenAI Realtime (docs/realtime.md)
    ]
    if web is not None:
        routes.append(Mount("/", StaticFiles(directory=str(web), html=True), name="web"))
    else:

        async def no_client(request: Request) -> Response:
            return PlainTextResponse(
                "the browser client (frontends/web) is not installed here\n", status_code=404
            )

        routes.append(Route("/", no_client))
    return Starlette(routes=routes)
