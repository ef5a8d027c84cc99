"""A local Ray cluster for the Ray Serve tests: 2 CPUs, no dashboard, started and stopped here."""

from __future__ import annotations

import socket

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="package")
def ray_cluster(bundled_dir):
    """(http_port, grpc_port) of Serve on a fresh local Ray; everything is shut down afterwards."""
    ray = pytest.importorskip("ray")
    serve = pytest.importorskip("ray.serve")
    from streamer.serve.ray_deploy import GRPC_SERVICER

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
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
