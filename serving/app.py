"""The Ray Serve application of streamer, for ``serve run`` / ``serve deploy`` (see serving/config.yaml).

    serve run serving/config.yaml                 # local: starts Ray, deploys, serves until Ctrl-C
    serve run serving.app:app                     # the same with the defaults (1 replica, bundled model)
    serve deploy serving/config.yaml -a http://HEAD:8265   # onto a running cluster

``build(args)`` is the application builder named in config.yaml: ``args`` are the fields of
:class:`streamer.serve.ray_config.RayServeConfig` (model, num_gpus, sessions_per_replica, ...).
The deployment itself lives in the package (:mod:`streamer.serve.ray_app`) so that
``streamer serve --ray`` runs exactly the same code, and a cluster whose image has the package
but not this checkout can use ``import_path: streamer.serve.ray_app:app_builder``.
"""

from __future__ import annotations

from typing import Any

from streamer.serve.ray_app import app_builder, build_app
from streamer.serve.ray_config import RayServeConfig

__all__ = ["app", "build"]


def build(args: dict[str, Any]) -> Any:
    """The application from config.yaml's ``args:`` (unknown keys are refused by name)."""
    return app_builder(args)


app = build_app(RayServeConfig())
