"""A local Ray cluster for the Ray Serve tests: 2 CPUs, no dashboard, started and stopped here."""

from __future__ import annotations

import socket

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_ray(ray) -> None:  # noqa: ANN001 - the module
    """``ray.init``, once more after a failed start: its raylet has a fixed 30 s to register with the
    GCS, which it once missed in a full CI run (no raylet log at all; the same tests passed alone)."""
    settings = {"num_cpus": 2, "include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    try:
        ray.init(**settings)
    except Exception as first:  # noqa: BLE001 - Ray raises a bare Exception for this
        if "timed out during startup" not in str(first):
            raise
        ray.shutdown()
        ray.init(**settings)


@pytest.fixture(scope="package")
def ray_cluster(bundled_dir):
    """(http_port, grpc_port) of Serve on a fresh local Ray; everything is shut down afterwards."""
    ray = pytest.importorskip("ray")
    serve = pytest.importorskip("ray.serve")
    from streamer.serve.ray_deploy import GRPC_SERVICER

    _start_ray(ray)
    http_port, grpc_port = free_port(), free_port()
    try:
        serve.start(
            http_options={"host": "127.0.0.1", "port": http_port},
            grpc_options={"port": grpc_port, "grpc_servicer_functions": [GRPC_SERVICER]},
        )
        yield http_port, grpc_port
    finally:
        serve.shutdown()
        ray.shutdown()
