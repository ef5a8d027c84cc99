"""The ``--ray`` flags shared by ``streamer serve`` and ``streamer summarize``.

``--ray [ADDRESS]`` runs the work on Ray Serve replicas (see :mod:`streamer.serve.ray_app`)
instead of an in-process engine; the model flags then say what each replica loads.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from streamer.cli.args import number

__all__ = ["add_ray_arguments", "ray_config", "serve_ray", "summarize_ray"]


def add_ray_arguments(parser: argparse.ArgumentParser, *, serving: bool = True) -> None:
    group = parser.add_argument_group("Ray Serve (scale out; pip install 'streamer[ray]')")
    group.add_argument(
        "--ray", nargs="?", const="", default=None, metavar="ADDRESS",
        help="run on Ray Serve replicas: the cluster at ADDRESS (auto, HEAD:6379, ray://HEAD:10001), "
             "or without ADDRESS the one on this machine (started if none)",
    )  # fmt: skip
    group.add_argument(
        "--replicas", type=number(int, 1, 4096), default=None, metavar="N",
        help="replicas of the engine (default: 1 for serve; summarize: 2, or the running application's)",
    )  # fmt: skip
    group.add_argument(
        "--replica-cpus", type=number(float, 0.0, 1024.0), default=1.0, metavar="N",
        help="CPUs reserved per replica (default 1)",
    )  # fmt: skip
    group.add_argument(
        "--replica-gpus", type=number(float, 0.0, 64.0), default=0.0, metavar="N",
        help="GPUs per replica (default 0; 1 = one replica per GPU)",
    )  # fmt: skip
    if serving:
        group.add_argument(
            "--max-replicas", type=number(int, 1, 4096), default=None, metavar="N",
            help="autoscale between --replicas and N on live sessions (--max-sessions is per replica with --ray)",
        )  # fmt: skip


def ray_config(args: argparse.Namespace, **fields: Any) -> Any:
    """A RayServeConfig from the model and --ray flags (plus ``fields``)."""
    from streamer.serve.ray_config import RayServeConfig

    gpus = args.replica_gpus
    device = None if gpus > 0 and args.device == "cpu" else args.device  # GPUs given: cuda unless told
    values: dict[str, Any] = {
        "model": args.model, "dtype": args.dtype, "device": device, "threads": args.threads,
        "num_cpus": args.replica_cpus, "num_gpus": gpus, **fields,
    }  # fmt: skip
    return RayServeConfig(**values)


def serve_ray(args: argparse.Namespace, options: Any) -> int:
    """``streamer serve --ray``: the Serve application with the serve flags, until SIGTERM/Ctrl-C."""
    from streamer.serve.ray_deploy import serve_on_ray

    limits = {
        f.name: getattr(options.limits, f.name)
        for f in dataclasses.fields(options.limits)
        if f.name != "max_sessions" and getattr(args, f.name, None) is not None
    }
    replicas = args.replicas or 1
    scaling: dict[str, Any] = {"num_replicas": replicas}
    if args.max_replicas is not None:
        scaling = {"min_replicas": replicas, "max_replicas": max(replicas, args.max_replicas)}
    env = {"STREAMER_API_KEY": options.api_key} if options.api_key else {}
    config = ray_config(
        args, fake=args.fake, sessions_per_replica=options.limits.max_sessions, limits=limits,
        grace_s=options.grace_s, web_dir=options.web_dir, env=env, **scaling,
    )  # fmt: skip

    def ready(where: str) -> None:
        print(f"streamer serve: listening: {where}", flush=True)

    serve_on_ray(args.ray or None, config, options, on_ready=ready)
    print("streamer serve: stopped", file=sys.stderr, flush=True)
    return 0


def summarize_ray(
    args: argparse.Namespace, jobs: list[Any], options: Any, fmt: str, deliver: Any
) -> list[Any]:
    """``streamer summarize --ray``: the planned jobs over the replicas; the failures (path, why)."""
    from pathlib import Path

    from streamer.errors import InputError
    from streamer.serve.ray_batch import summarize_on_ray
    from streamer.serve.ray_config import APP_NAME
    from streamer.serve.ray_deploy import connect, ensure_app, running_replicas
    from streamer.summarize.progress import make_progress

    cluster = connect(args.ray or None, quiet=True)
    deployed = False
    try:
        from ray import serve

        if serve.status().applications.get(APP_NAME) is None:
            serve.start(proxy_location="Disabled")  # no HTTP needed for batch work (no-op if Serve runs)
        handle, deployed = ensure_app(ray_config(args, num_replicas=args.replicas or 2), route_prefix=None)
        served = handle.describe.remote().result()
        progress = make_progress(args.quiet)
        if not deployed:
            wanted = None if args.model is None else str(Path(args.model).resolve())
            if served.get("fake") or (wanted is not None and served.get("model") != wanted):
                raise InputError(
                    f"the running '{APP_NAME}' application serves {served.get('model') or 'a fake engine'}, "
                    f"not {wanted or 'a model'}; delete it (serve shutdown) or drop --model"
                )
            progress.info(f"using the running '{APP_NAME}' application ({served.get('model')})")
        replicas = running_replicas() or 1
        progress.info(f"{len(jobs)} recording(s) over {replicas} Ray Serve replica(s)")
        return summarize_on_ray(
            handle, jobs, options, fmt, args.resume, deliver, quiet=args.quiet, parallel=replicas
        )
    finally:
        if deployed:
            from ray import serve

            serve.delete(APP_NAME)
        cluster.close()
