"""The Serve application on a local Ray: 2 replicas of the bundled model behind Serve's proxies.

Few and lean (Ray takes seconds to start): one session's messages all reach its replica, sessions
spread and a full cluster refuses with an error event, a killed replica's clients learn it at
once while new sessions land on the other, a planned drain sends go_away.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest

pytest.importorskip("ray.serve")
from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from streamer.serve.ray_config import APP_NAME, RayServeConfig  # noqa: E402

pytestmark = pytest.mark.timeout(240)

CONFIG = dict(
    dtype="float32", num_replicas=2, num_cpus=0.5, sessions_per_replica=2, request_headroom=2, grace_s=2.0,
    drain_poll_s=0.25, health_check_period_s=1.0, routing_stats_period_s=0.5,
)  # fmt: skip


def wait_running(replicas: int, timeout: float = 90.0) -> None:
    from ray import serve

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app = serve.status().applications.get(APP_NAME)
        if app is not None and str(app.status).endswith("RUNNING"):
            states = next(iter(app.deployments.values())).replica_states
            if states.get("RUNNING", 0) == replicas and len(states) == 1:
                return
        time.sleep(0.25)
    raise AssertionError(f"the application did not get {replicas} running replicas")


@pytest.fixture(scope="module")
def app(ray_cluster, bundled_dir):
    from ray import serve

    from streamer.serve.ray_app import build_app

    serve.run(build_app(RayServeConfig(model=str(bundled_dir), **CONFIG)), name=APP_NAME, route_prefix="/")
    http_port, _ = ray_cluster
    yield f"127.0.0.1:{http_port}"
    if serve.status().applications.get(APP_NAME) is not None:
        serve.delete(APP_NAME)


class Live:
    """A WebSocket client of /v1/live."""

    def __init__(self, host: str):
        self.ws = connect(f"ws://{host}/v1/live", open_timeout=30, legacy=True)
        self.seq = 0

    def send(self, **message) -> int:
        self.seq += 1
        self.ws.send(json.dumps({**message, "seq": self.seq}))
        return self.seq

    def recv(self, timeout: float = 30.0) -> dict:
        return json.loads(self.ws.recv(timeout=timeout))

    def until(self, kind: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            message = self.recv(max(0.01, deadline - time.monotonic()))
            if message["type"] == kind or (message["type"] == "error" and message.get("fatal")):
                return message

    def open(self) -> dict:
        self.send(type="setup", sampling={"max_new_tokens": 6})
        return self.recv()

    def close(self) -> None:
        self.ws.close()


def replica_of(ready: dict) -> str:
    return ready["session_id"].split("_")[1]  # sess_<replica>_<hex>


def test_every_message_of_a_session_reaches_its_replica(app):
    assert json.loads(urllib.request.urlopen(f"http://{app}/healthz", timeout=10).read())["status"] == "ok"
    assert b"streamer_sessions" in urllib.request.urlopen(f"http://{app}/metrics", timeout=10).read()
    live = Live(app)
    ready = live.open()
    assert ready["type"] == "ready" and replica_of(ready)
    for i in range(5):
        live.send(type="text", text=f"fact number {i}")
    for _ in range(2):
        asked = live.send(type="ask", question="What happened?")
        done = live.until("answer_done")
        assert done["seq"] == asked and done["finish_reason"] in ("length", "stop")
    # The engine that holds the session consumed every message sent on the socket, in order.
    deadline = time.monotonic() + 10
    while (stats := live.until("stats"))["last_consumed_seq"] != live.seq and time.monotonic() < deadline:
        pass
    assert stats["session_id"] == ready["session_id"] and stats["last_consumed_seq"] == live.seq
    live.close()
    # the app's other live endpoint (OpenAI Realtime) comes through the same proxy unchanged
    with connect(f"ws://{app}/v1/realtime", open_timeout=30) as realtime:
        assert json.loads(realtime.recv(timeout=30))["type"] == "session.created"


def test_grpc_live_and_ask_through_serves_proxy(app, ray_cluster):
    import asyncio

    import grpc

    from streamer.serve.proto.streamer.v1 import streamer_pb2 as pb
    from streamer.serve.proto.streamer.v1 import streamer_pb2_grpc as pb_grpc

    async def main():
        async with grpc.aio.insecure_channel(f"127.0.0.1:{ray_cluster[1]}") as channel:
            stub = pb_grpc.StreamerStub(channel)
            reply = await stub.Ask(
                pb.AskRequest(prompt="Anything?", sampling=pb.SamplingParams(max_new_tokens=4)), timeout=60
            )
            assert reply.tokens > 0 and reply.request_id
            call = stub.Live()
            await call.write(pb.LiveRequest(seq=1, setup=pb.Setup()))
            ready = (await call.read()).ready
            assert ready.session_id.startswith("sess_")
            for seq in range(2, 5):
                await call.write(pb.LiveRequest(seq=seq, text=pb.Text(text=f"fact {seq}")))
            await call.write(pb.LiveRequest(seq=5, ask=pb.Question(question="Well?")))
            kinds, last_consumed = [], None
            while last_consumed != 5 or "answer_done" not in kinds:
                msg = await asyncio.wait_for(call.read(), 30)
                kinds.append(msg.WhichOneof("message"))
                if kinds[-1] == "stats":
                    last_consumed = msg.stats.last_consumed_seq  # the session's engine took every message
            assert "answer_delta" in kinds
            await call.write(pb.LiveRequest(seq=6, close=pb.Close()))
            while await call.read() is not grpc.aio.EOF:
                pass
            assert await call.code() == grpc.StatusCode.OK
            await call.done_writing()
            # an error that ends a stream keeps its status and stable code through Serve's proxy
            bad = stub.Live()
            await bad.write(pb.LiveRequest(seq=1, text=pb.Text(text="no setup first")))
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                while await bad.read() is not grpc.aio.EOF:
                    pass
            assert ended.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert ended.value.details().startswith("[protocol_violation]")

    asyncio.run(asyncio.wait_for(main(), 120))


def test_sessions_spread_and_a_full_cluster_refuses_with_an_error_event(app):
    time.sleep(1.0)  # the previous test's session is gone from the routing stats
    lives = [Live(app) for _ in range(4)]
    replicas = [replica_of(live.open()) for live in lives]
    assert len(set(replicas)) == 2 and all(replicas.count(r) == 2 for r in replicas), replicas
    extra = Live(app)
    refused = extra.open()
    assert refused["type"] == "error" and refused["code"] == "session_limit" and refused["fatal"]
    with pytest.raises(ConnectionClosed) as closed:
        extra.recv(10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013  # try again later
    for live in lives:
        live.close()


def test_a_killed_replica_ends_its_sessions_at_once_and_new_ones_land(app):
    import ray

    time.sleep(1.0)
    a, b = Live(app), Live(app)
    ra, rb = replica_of(a.open()), replica_of(b.open())
    assert ra != rb
    a.send(type="ask", question="Talk for a while.", sampling={"max_new_tokens": 1000})
    a.until("answer_delta")
    victim = next(
        n["name"]
        for n in ray.util.list_named_actors(all_namespaces=True)
        if n["name"].startswith("SERVE_REPLICA::") and n["name"].endswith(ra)
    )
    killed = time.monotonic()
    ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
    with pytest.raises(ConnectionClosed):
        while True:
            a.recv(15)
    lost_s = time.monotonic() - killed
    assert lost_s < 5.0, f"the client learnt of its replica's death after {lost_s:.1f} s"
    b.send(type="ask", question="Still there?")
    assert b.until("answer_done")["finish_reason"] in ("length", "stop")
    c = Live(app)
    ready = c.open()
    assert ready["type"] == "ready" and replica_of(ready) != ra
    for live in (b, c):
        live.close()
    wait_running(2)  # Serve replaced the dead replica


def test_a_planned_drain_sends_go_away_with_the_time_left(app):
    from ray import serve

    time.sleep(1.0)
    live = Live(app)
    assert live.open()["type"] == "ready"
    deleting = threading.Thread(target=serve.delete, args=(APP_NAME,), daemon=True)
    started = time.monotonic()
    deleting.start()
    go_away = live.until("go_away", timeout=15)
    assert go_away["type"] == "go_away" and go_away["seconds_left"] == CONFIG["grace_s"]
    assert time.monotonic() - started < 5.0
    ended = live.until("error", timeout=10)
    assert ended["code"] == "going_away" and ended["fatal"]
    deleting.join(30)
