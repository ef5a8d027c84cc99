"""Connecting to a Ray cluster and running the Serve application from the CLI.

    streamer serve --ray [ADDRESS]          → :func:`serve_on_ray` (deploy, serve until SIGTERM/Ctrl-C, delete)
    streamer summarize --ray [ADDRESS] ...  → :func:`connect` + :func:`ensure_app` + ray_batch

ADDRESS is what ``ray.init(address=...)`` takes (``auto``, ``ray://HEAD:10001``, ``HEAD:6379``);
without it a Ray instance already running on this machine is joined, else a local one is started
(and stopped at the end). Ray's own errors become one-line :class:`~streamer.errors.InputError`.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from streamer.errors import InputError
from streamer.serve.ray_config import APP_NAME, DEPLOYMENT_NAME, RayServeConfig

__all__ = ["GRPC_SERVICER", "Cluster", "connect", "ensure_app", "running_replicas", "serve_on_ray"]

GRPC_SERVICER = "streamer.serve.proto.streamer.v1.streamer_pb2_grpc.add_StreamerServicer_to_server"


@dataclass
class Cluster:
    """A Ray connection made by :func:`connect`; :meth:`close` undoes exactly what connect did."""

    address: str  # what was asked ("" for local)
    owned: bool  # we started this Ray instance: close() stops Serve and Ray
    connected: bool = True  # we connected this process (else it already was: close() leaves it)

    def close(self) -> None:
        import ray

        if self.owned:
            with contextlib.suppress(Exception):
                from ray import serve

                serve.shutdown()
        if self.connected and ray.is_initialized():
            ray.shutdown()


def connect(address: str | None, *, quiet: bool = False, num_cpus: int | None = None) -> Cluster:
    """Join the cluster at ``address`` (None/"": one on this machine, else start a local one)."""
    import ray

    if ray.is_initialized():  # a test or a notebook already connected this process
        return Cluster(address or "", owned=False, connected=False)
    kwargs: dict[str, Any] = {"log_to_driver": not quiet, "logging_level": "ERROR" if quiet else "INFO"}
    try:
        if address:
            ray.init(address=address, **kwargs)
            return Cluster(address, owned=False)
        try:
            ray.init(address="auto", **kwargs)
            return Cluster("", owned=False)
        except ConnectionError:
            ray.init(num_cpus=num_cpus, include_dashboard=False, **kwargs)
            return Cluster("", owned=True)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise InputError(f"cannot connect to the Ray cluster at {address or 'this machine'}: {exc}") from exc


def ensure_app(config: RayServeConfig, *, route_prefix: str | None = "/") -> tuple[Any, bool]:
    """A handle to the running ``streamer`` application, deploying it from ``config`` if there is none.

    Returns (handle, deployed_here).
    """
    from ray import serve

    status = serve.status().applications.get(APP_NAME)
    if status is not None and str(status.status).endswith("RUNNING"):
        return serve.get_app_handle(APP_NAME), False
    from streamer.serve.ray_app import build_app

    return _run(build_app(config), route_prefix), True


def _run(app: Any, route_prefix: str | None) -> Any:
    from ray import serve
    from ray.serve.exceptions import RayServeException

    try:
        return serve.run(app, name=APP_NAME, route_prefix=route_prefix)
    except RayServeException as exc:
        raise InputError(f"the Serve application did not start: {str(exc).splitlines()[0]}") from exc


@contextlib.contextmanager
def _until_signal() -> Iterator[threading.Event]:
    stop = threading.Event()
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(ValueError):  # not the main thread
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve_on_ray(
    address: str | None,
    config: RayServeConfig,
    options: Any,
    on_ready: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Deploy the application on the cluster and serve until SIGTERM/SIGINT (or ``stop``).

    ``options``: ``streamer serve``'s ServeOptions (host, ports, TLS). On exit the application is
    deleted: every replica drains (``go_away`` to its sessions, ``config.grace_s``), then stops.
    """
    from ray import serve

    cluster = connect(address)
    try:
        http: dict[str, Any] = {"host": options.host, "port": options.http_port}
        if options.tls_cert is not None:
            http.update(ssl_certfile=options.tls_cert, ssl_keyfile=options.tls_key)
        grpc: dict[str, Any] | None = None
        if options.grpc_port is not None and hasattr(_deployment_class(), "Live"):
            grpc = {"port": options.grpc_port, "grpc_servicer_functions": [GRPC_SERVICER]}
        serve.start(http_options=http, grpc_options=grpc)
        from streamer.serve.ray_app import build_app

        _run(build_app(config), "/")
        if on_ready is not None:
            scheme = "https" if options.tls_cert else "http"
            where = f"{scheme}://{options.host}:{options.http_port}/ (WebSocket /v1/live, /healthz, /metrics)"
            if grpc is not None:
                where += f"; grpc on {options.host}:{options.grpc_port}"
            replicas = (
                config.num_replicas
                if not config.autoscaling
                else f"{config.min_replicas}-{config.max_replicas}"
            )
            on_ready(f"{where} via Ray Serve, {replicas} replica(s) x {config.sessions_per_replica} sessions")
        with _until_signal() as signalled:
            while not signalled.is_set() and not (stop is not None and stop.is_set()):
                time.sleep(0.2)
        print("streamer serve: draining the Ray Serve application...", file=sys.stderr, flush=True)
        if not _delete_app(config.grace_s + config.drain_poll_s + 15.0):
            print(
                "streamer serve: the application did not stop in time (is the Ray cluster gone?)",
                file=sys.stderr,
                flush=True,
            )
    finally:
        cluster.close()


def _delete_app(timeout_s: float) -> bool:
    """``serve.delete`` bounded in time (it waits forever on a cluster that died under it)."""
    from ray import serve

    worker = threading.Thread(target=serve.delete, args=(APP_NAME,), daemon=True)
    worker.start()
    worker.join(timeout_s)
    return not worker.is_alive()


def _deployment_class() -> Any:
    from streamer.serve.ray_app import StreamerEngine

    return StreamerEngine


def running_replicas() -> int:
    """RUNNING replicas of the streamer deployment (0 when it is not deployed)."""
    from ray import serve

    application = serve.status().applications.get(APP_NAME)
    if application is None or DEPLOYMENT_NAME not in application.deployments:
        return 0
    states = application.deployments[DEPLOYMENT_NAME].replica_states
    return sum(n for state, n in states.items() if str(getattr(state, "value", state)) == "RUNNING")
