"""How the Ray Serve deployment is sized: one validated dataclass, and the Serve options it implies.

Plain data, no Ray and no torch: ``serving/config.yaml`` ``args:``, ``streamer serve --ray`` flags
and tests all build a :class:`RayServeConfig`, and :meth:`RayServeConfig.deployment_options`
turns it into the keyword arguments of ``serve.deployment(...).options(...)``.

Sizing (one replica = one engine = one model copy, on ``num_gpus`` GPUs):

* a live session is one long request (a WebSocket or a gRPC ``Live`` stream held by the replica
  for its lifetime), so ``sessions_per_replica`` sessions occupy that many ``max_ongoing_requests``
  slots; ``request_headroom`` more slots carry ``/healthz``, ``/metrics``, ``Ask`` and the surplus
  sessions that the replica turns away with a ``session_limit`` error event (instead of letting
  them queue);
* ``max_queued_requests`` bounds what waits at a proxy when every replica is past even that;
  beyond it Serve answers 503 / RESOURCE_EXHAUSTED at once;
* autoscaling (``min_replicas`` < ``max_replicas``) targets ``target_utilization`` of the session
  slots per replica, so a new replica starts loading before the others are full.

:func:`sessions_for_kv_budget` is the rule of thumb behind ``sessions_per_replica``: the KV memory
left on a GPU after the weights, divided by one session's cache.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any

from streamer.errors import InputError
from streamer.serve.ray_drain import DRAIN_SLACK_S

__all__ = [
    "APP_NAME",
    "DEPLOYMENT_NAME",
    "RayServeConfig",
    "sessions_for_kv_budget",
]

APP_NAME = "streamer"  # the Serve application name (gRPC clients may send it as `application` metadata)
DEPLOYMENT_NAME = "StreamerEngine"


@dataclass(frozen=True)
class RayServeConfig:
    """Everything the Serve application needs; every field is checked on construction."""

    model: str | None = None  # checkpoint directory (None: the tiny bundled model); same path on every node
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16
    device: str | None = None  # torch device (None: cuda when num_gpus > 0, else cpu)
    threads: int | None = None  # torch CPU threads per replica (None: num_cpus rounded up)
    fake: bool = False  # a scripted engine with no model (protocol work and tests)
    fake_step_s: float = 0.02  # seconds of simulated model time per step of the fake engine
    num_replicas: int = 1  # replicas when not autoscaling
    min_replicas: int | None = None  # with max_replicas: autoscale between the two
    max_replicas: int | None = None
    num_cpus: float = 1.0  # CPUs reserved per replica
    num_gpus: float = 0.0  # GPUs per replica (1 for a 12B model in bf16 on one GPU)
    sessions_per_replica: int = 8  # live sessions one replica serves (size it from the KV budget)
    request_headroom: int = 4  # extra concurrent requests per replica (health, metrics, Ask, refusals)
    max_queued_requests: int = 8  # requests waiting at one proxy when every replica is saturated
    target_utilization: float = 0.75  # autoscaling target: this share of the session slots
    grace_s: float = 20.0  # seconds a draining replica gives its sessions (graceful_shutdown_timeout_s)
    drain_poll_s: float = 1.0  # seconds between a replica's checks for its own drain (0: no go_away)
    health_check_period_s: float = 5.0  # seconds between Serve's calls of check_health
    health_check_timeout_s: float = 30.0  # seconds check_health may take before the replica is replaced
    routing_stats_period_s: float = 2.0  # seconds between the replicas' capacity reports to the routers
    api_key: str | None = None  # required from clients (None: $STREAMER_API_KEY where the replica runs)
    web_dir: str | None = None  # the browser client folder (None: frontends/web of the checkout)
    summarize_dir: str | None = None  # server files gRPC Summarize may read (None: uploads only)
    limits: dict[str, Any] = field(default_factory=dict)  # ServeLimits overrides (max_sessions is ours)
    env: dict[str, str] = field(default_factory=dict)  # environment variables for the replicas

    def __post_init__(self) -> None:
        _ints = {
            "num_replicas": 1, "sessions_per_replica": 1, "request_headroom": 1, "max_queued_requests": 0,
        }  # fmt: skip
        for name, low in _ints.items():
            _check_int(getattr(self, name), name, low)
        for name in ("min_replicas", "max_replicas", "threads"):
            if getattr(self, name) is not None:
                _check_int(getattr(self, name), name, 1 if name != "min_replicas" else 0)
        if (self.min_replicas is None) != (self.max_replicas is None):
            raise InputError("min_replicas and max_replicas go together")
        if self.min_replicas is not None and self.max_replicas is not None:
            if self.min_replicas > self.max_replicas:
                raise InputError("min_replicas is above max_replicas")
        _check_float(self.num_cpus, "num_cpus", 0.0, 1024.0)
        _check_float(self.num_gpus, "num_gpus", 0.0, 64.0)
        _check_float(self.target_utilization, "target_utilization", 0.05, 1.0)
        _check_float(self.fake_step_s, "fake_step_s", 0.0, 60.0)
        _check_float(self.grace_s, "grace_s", 0.0, 86400.0)
        _check_float(self.drain_poll_s, "drain_poll_s", 0.0, 3600.0)
        _check_float(self.health_check_period_s, "health_check_period_s", 0.1, 3600.0)
        _check_float(self.health_check_timeout_s, "health_check_timeout_s", 0.1, 3600.0)
        _check_float(self.routing_stats_period_s, "routing_stats_period_s", 0.1, 3600.0)
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise InputError(f"dtype must be auto, float32, bfloat16 or float16, got {self.dtype!r}")
        if not isinstance(self.limits, dict) or not isinstance(self.env, dict):
            raise InputError("limits and env must be mappings")
        if "max_sessions" in self.limits:
            raise InputError("set sessions_per_replica, not limits.max_sessions")
        self.serve_limits()  # refuse bad limits now, naming the field

    @classmethod
    def from_args(cls, args: dict[str, Any] | None) -> RayServeConfig:
        """From ``serving/config.yaml``'s ``args:`` (unknown keys refused by name)."""
        args = dict(args or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(args) - known)
        if unknown:
            raise InputError(f"unknown Serve application args: {', '.join(unknown)} (known: {sorted(known)})")
        return cls(**args)

    def replica_args(self) -> dict[str, Any]:
        """The fields a replica reads, as the deployment's init argument.

        Scaling fields (replicas, queue bounds, health periods) are left out: changing them
        rescales the running deployment instead of replacing every replica (and its sessions).
        """
        scaling = {
            "num_replicas", "min_replicas", "max_replicas", "max_queued_requests", "target_utilization",
            "health_check_period_s", "health_check_timeout_s", "routing_stats_period_s", "num_cpus", "num_gpus",
            "env",
        }  # fmt: skip
        args = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in scaling}
        # device and threads depend on num_cpus / num_gpus, left out above
        args.update(device=self.resolved_device, threads=self.resolved_threads)
        return args

    # ---- derived ---------------------------------------------------------------------------
    @property
    def autoscaling(self) -> bool:
        return self.min_replicas is not None and self.max_replicas != self.min_replicas

    @property
    def max_ongoing_requests(self) -> int:
        """Requests one replica runs at once: its sessions plus the headroom."""
        return self.sessions_per_replica + self.request_headroom

    @property
    def target_ongoing_requests(self) -> float:
        """Autoscaling's target of ongoing requests per replica."""
        return max(1.0, round(self.sessions_per_replica * self.target_utilization, 2))

    @property
    def resolved_device(self) -> str:
        return self.device or ("cuda" if self.num_gpus > 0 else "cpu")

    @property
    def resolved_threads(self) -> int:
        return self.threads or max(1, math.ceil(self.num_cpus))

    def resolved_api_key(self) -> str | None:
        return self.api_key or os.environ.get("STREAMER_API_KEY") or None

    def serve_limits(self) -> Any:
        """The :class:`~streamer.serve.limits.ServeLimits` of one replica."""
        from streamer.serve.limits import ServeLimits

        unknown = sorted(set(self.limits) - {f.name for f in dataclasses.fields(ServeLimits)})
        if unknown:
            raise InputError(f"unknown limits: {', '.join(unknown)}")
        return ServeLimits(**{**self.limits, "max_sessions": self.sessions_per_replica})

    def deployment_options(self) -> dict[str, Any]:
        """Keyword arguments for ``Deployment.options(...)``."""
        actor: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}
        if self.env:
            actor["runtime_env"] = {"env_vars": dict(self.env)}
        options: dict[str, Any] = {
            "ray_actor_options": actor,
            "max_ongoing_requests": self.max_ongoing_requests,
            "max_queued_requests": self.max_queued_requests,
            # our drain (grace_s, noticed up to drain_poll_s late) ends first, then Serve kills
            "graceful_shutdown_timeout_s": self.grace_s + self.drain_poll_s + DRAIN_SLACK_S,
            "graceful_shutdown_wait_loop_s": 0.5,
            "health_check_period_s": self.health_check_period_s,
            "health_check_timeout_s": self.health_check_timeout_s,
            "request_router_config": {
                "request_router_class": "streamer.serve.ray_router:FreeCapacityRouter",
                "request_routing_stats_period_s": self.routing_stats_period_s,
                "request_routing_stats_timeout_s": max(1.0, self.routing_stats_period_s),
            },
        }
        if self.autoscaling:
            options["autoscaling_config"] = {
                "min_replicas": self.min_replicas,
                "initial_replicas": max(self.min_replicas or 0, 1),
                "max_replicas": self.max_replicas,
                "target_ongoing_requests": self.target_ongoing_requests,
                "upscale_delay_s": 10.0,
                "downscale_delay_s": 600.0,  # a replica drained too eagerly costs its sessions
            }
        else:
            options["num_replicas"] = (
                self.min_replicas if self.min_replicas is not None else self.num_replicas
            )
        return options


def sessions_for_kv_budget(free_bytes: int, kv_bytes_per_session: int, reserve_fraction: float = 0.1) -> int:
    """Sessions that fit in ``free_bytes`` of accelerator memory left after the weights.

    ``kv_bytes_per_session``: the full-attention budget (``max_context_tokens`` x
    :func:`streamer.engine.context.kv_bytes_per_token`) plus the fixed sliding-window rings.
    ``reserve_fraction`` is kept back for activations and allocator slack. At least 1.
    """
    if kv_bytes_per_session <= 0:
        raise InputError("kv_bytes_per_session must be > 0")
    usable = max(0, int(free_bytes * (1.0 - reserve_fraction)))
    return max(1, usable // kv_bytes_per_session)


def _check_int(value: Any, name: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(f"{name} must be an integer >= {low}, got {value!r}")


def _check_float(value: Any, name: str, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{name} must be a number, got {value!r}")
    if not low <= value <= high:
        raise InputError(f"{name} must be in [{low:g}, {high:g}], got {value!r}")
