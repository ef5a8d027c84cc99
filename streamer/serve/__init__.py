"""Live endpoints: one Sans-I/O protocol core under thin WebSocket, HTTP and gRPC adapters.

    streamer/serve/messages.py   transport-neutral client/server messages (+ dict form)
    streamer/serve/limits.py     ServeLimits, shared by every endpoint
    streamer/serve/live.py       LiveProtocol (one connection's state machine) and LiveHub (all of them)
    streamer/serve/ws.py         WebSocket framing: JSON control messages + binary media header
    streamer/serve/app.py        the ASGI app: /, /healthz, /metrics, /v1/live
    streamer/serve/server.py     ``streamer serve``: uvicorn + optional gRPC, SIGTERM drain

gRPC contract (``streamer.serve.grpc_server``, optional): ``streamer serve`` calls
``await start_grpc_server(engine, options, hub)`` with the :class:`~streamer.engine.aio.AsyncEngine`,
the :class:`~streamer.serve.options.ServeOptions` and the shared :class:`~streamer.serve.live.LiveHub`
(its ``Live`` handler drives ``hub.connect()`` like ``ws.py`` does); it returns an object with
``async stop(grace_s: float)`` and ``port: int``. ``hub.drain(grace_s)`` runs before ``stop``.

Ray Serve (``pip install 'streamer[ray]'``; README "Scale out with Ray Serve"): ``ray_app.py`` is the
deployment (a replica = an engine + the app above + the gRPC servicer over one hub), ``ray_config.py``
its sizing, ``ray_router.py`` admission by free capacity, ``ray_drain.py`` go_away on a planned drain,
``ray_grpc.py`` Serve's gRPC context for the servicer, ``ray_batch.py`` summarize over the replicas,
``ray_deploy.py`` the CLI's cluster connection.

Nothing here imports torch; the serving extras (starlette, uvicorn, prometheus-client) are
imported only by the adapters that need them.
"""

from __future__ import annotations

__all__: list[str] = []
