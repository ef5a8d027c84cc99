"""Admission on Ray Serve: a new session goes to the replica with the most free session capacity.

Serve's default router (power of two choices) compares two random replicas by queue length.
With more than two replicas it can pick two full ones while a third has room, and the full one
would then refuse the session. :class:`FreeCapacityRouter` ranks every replica instead:

    free sessions = capacity - max(sessions reported, ongoing requests - headroom)
    then free KV bytes, then fewest ongoing requests

``capacity``, ``sessions``, ``headroom`` and ``free_kv_bytes`` come from each replica's
``record_routing_stats`` (every ``routing_stats_period_s``); the ongoing-request count is the
router's own, fresher figure (it counts what it sent). The first replica in the ranking with a
free request slot takes the request. A request never waits for a session slot: when even the best
replica is full it still goes there (a headroom slot) and is refused at once with a clear
``session_limit`` error event; when every request slot of every replica is taken, Serve's
``max_queued_requests`` bounds the wait and then answers 503 / RESOURCE_EXHAUSTED.

Affinity needs no router: a WebSocket or a gRPC ``Live`` stream is one request, held by the
replica that accepted it for the whole session (README: "Scale out with Ray Serve").

This class runs inside Serve's proxies and handles, so it must import without torch.
"""

from __future__ import annotations

from typing import Any

from ray.serve.request_router import PendingRequest, RequestRouter, RunningReplica

__all__ = ["FreeCapacityRouter", "rank_replicas"]


def _free(stats: dict[str, Any], ongoing: int | None, max_ongoing: int) -> tuple[float, float, float]:
    """(free sessions, free KV bytes, -ongoing) of one replica; larger is better."""
    headroom = int(stats.get("headroom", 0))
    capacity = int(stats.get("capacity", max_ongoing - headroom))
    sessions = int(stats.get("sessions", 0))
    if ongoing is not None:
        sessions = max(sessions, ongoing - headroom)
    free_kv = float(stats.get("free_kv_bytes", 0))
    return float(capacity - sessions), free_kv, -float(ongoing or 0)


def rank_replicas(
    replicas: list[Any],
    stats: dict[Any, dict[str, Any]],
    ongoing: dict[Any, int | None],
    max_ongoing: dict[Any, int],
) -> list[Any]:
    """Replica ids, best first (pure: tested without Ray)."""
    return sorted(
        replicas, key=lambda r: _free(stats.get(r, {}), ongoing.get(r), max_ongoing[r]), reverse=True
    )


class FreeCapacityRouter(RequestRouter):
    """Ranks all replicas by free session capacity (module docstring); one replica per rank."""

    async def choose_replicas(
        self,
        candidate_replicas: list[RunningReplica],
        pending_request: PendingRequest | None = None,
    ) -> list[list[RunningReplica]]:
        if not candidate_replicas:
            return []
        by_id = {r.replica_id: r for r in candidate_replicas}
        cache = self.replica_queue_len_cache
        ranked = rank_replicas(
            list(by_id),
            {rid: dict(r.routing_stats or {}) for rid, r in by_id.items()},
            {rid: cache.get(rid) for rid in by_id},
            {rid: r.max_ongoing_requests for rid, r in by_id.items()},
        )
        return [[by_id[rid]] for rid in ranked]
