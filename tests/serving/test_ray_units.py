"""Ray Serve sizing, admission ranking and the drain watcher, without a cluster (milliseconds)."""

from __future__ import annotations

import asyncio

import pytest

from streamer.errors import InputError
from streamer.serve.ray_config import RayServeConfig, sessions_for_kv_budget
from streamer.serve.ray_drain import GONE, DrainWatcher


def test_sizing_follows_sessions_per_replica():
    c = RayServeConfig(sessions_per_replica=8, request_headroom=4, min_replicas=1, max_replicas=4)
    o = c.deployment_options()
    assert o["max_ongoing_requests"] == 12 and o["max_queued_requests"] == 8
    assert o["autoscaling_config"]["target_ongoing_requests"] == 6.0  # 75 % of the session slots
    assert o["autoscaling_config"]["min_replicas"] == 1 and "num_replicas" not in o
    assert o["request_router_config"]["request_router_class"].endswith(":FreeCapacityRouter")
    assert o["graceful_shutdown_timeout_s"] > c.grace_s + c.drain_poll_s
    assert c.serve_limits().max_sessions == 8
    fixed = RayServeConfig(num_replicas=3, num_gpus=1).deployment_options()
    assert fixed["num_replicas"] == 3 and fixed["ray_actor_options"]["num_gpus"] == 1


def test_replica_args_leave_scaling_out_and_resolve_the_device():
    a = RayServeConfig(num_replicas=1, num_gpus=1, num_cpus=2).replica_args()
    b = RayServeConfig(num_replicas=5, num_gpus=1, num_cpus=2, max_queued_requests=1).replica_args()
    assert a == b  # rescaling does not replace the replicas
    assert a["device"] == "cuda" and a["threads"] == 2 and "num_replicas" not in a
    assert RayServeConfig.from_args(a).resolved_device == "cuda"


@pytest.mark.parametrize(
    "args",
    [
        {"sessions_per_replica": 0},
        {"min_replicas": 2},
        {"min_replicas": 3, "max_replicas": 2},
        {"num_gpus": float("nan")},
        {"limits": {"max_sessions": 4}},
        {"limits": {"max_fps": -1}},
        {"limits": {"no_such_limit": 1}},
        {"dtype": "int8"},
        {"replicas": 2},  # unknown key, refused by name
    ],
)
def test_bad_config_is_refused_by_name(args):
    with pytest.raises(InputError):
        RayServeConfig.from_args(args)


def test_sessions_from_the_kv_budget():
    per_session = 64 * 1024 * 16_384  # the 12B estimate: 64 KiB/token x the 16k-token default budget = 1 GiB
    assert sessions_for_kv_budget(40 << 30, per_session) == 36  # 40 GiB free, 10 % kept back
    assert sessions_for_kv_budget(1 << 20, per_session) == 1


def test_ranking_prefers_free_sessions_then_kv_then_fewer_requests():
    pytest.importorskip("ray.serve")
    from streamer.serve.ray_router import rank_replicas

    stats = {
        "a": {"capacity": 4, "sessions": 4, "headroom": 2},
        "b": {"capacity": 4, "sessions": 1, "headroom": 2, "free_kv_bytes": 3},
        "c": {"capacity": 4, "sessions": 1, "headroom": 2, "free_kv_bytes": 9},
        "d": {"capacity": 0, "sessions": 0, "headroom": 2},  # draining
    }
    ongoing = {"a": 4, "b": 1, "c": 1, "d": 0}
    assert rank_replicas(list(stats), stats, ongoing, dict.fromkeys(stats, 6)) == ["c", "b", "d", "a"]
    # the router's own count is fresher than the replica's last report
    assert rank_replicas(["b", "c"], stats, {"b": 1, "c": 5}, dict.fromkeys("bc", 6)) == ["b", "c"]
    # no stats yet: free request slots decide
    assert rank_replicas(["x", "y"], {}, {"x": 3, "y": None}, {"x": 6, "y": 6}) == ["y", "x"]


@pytest.mark.parametrize("final", ["STOPPING", GONE])
def test_drain_watcher_calls_drain_once_with_the_grace(final):
    states = iter(["RUNNING", "RUNNING", final])
    drained: list[float] = []

    async def state():
        return next(states)

    async def drain(seconds: float):
        drained.append(seconds)

    asyncio.run(DrainWatcher(state, drain, grace_s=7.0, poll_s=0.001).run())
    assert drained == [7.0]


def test_drain_watcher_gives_up_quietly_when_the_lookup_keeps_failing():
    calls = 0

    async def state():
        nonlocal calls
        calls += 1
        raise RuntimeError("controller gone")

    async def drain(seconds: float):
        raise AssertionError("no drain without a STOPPING state")

    asyncio.run(DrainWatcher(state, drain, grace_s=1.0, poll_s=0.0001).run())
    assert calls == 30


@pytest.mark.parametrize("name", ["config.yaml", "rayservice.yaml"])
def test_the_shipped_serve_configs_are_valid(name):
    yaml = pytest.importorskip("yaml")
    schema = pytest.importorskip("ray.serve.schema")
    from pathlib import Path

    docs = list(yaml.safe_load_all((Path(__file__).parents[2] / "serving" / name).read_text()))
    serve_config = yaml.safe_load(docs[0]["spec"]["serveConfigV2"]) if name == "rayservice.yaml" else docs[0]
    schema.ServeDeploySchema(**serve_config)
    (app,) = serve_config["applications"]
    config = RayServeConfig.from_args(app["args"])
    assert (
        config.deployment_options()["max_ongoing_requests"]
        == config.sessions_per_replica + config.request_headroom
    )
    servicers = serve_config["grpc_options"]["grpc_servicer_functions"]
    from streamer.serve.ray_deploy import GRPC_SERVICER

    assert servicers == [GRPC_SERVICER]
