"""A planned drain on Ray Serve: tell the replica's clients ``go_away`` with the time they have left.

When Serve scales a deployment down, redeploys it or deletes it, the controller marks the replica
STOPPING, stops routing new requests to it, waits up to ``graceful_shutdown_timeout_s`` for its
ongoing requests (our live sessions) and then kills it. Ray 2.60 gives user code no call at the
start of that drain (``Replica.perform_graceful_shutdown`` only sets a private flag; a
deployment's ``__del__`` runs after the wait), so each replica watches for it:
:class:`DrainWatcher` asks the controller every ``drain_poll_s`` for this deployment's replica
states (the same details as the dashboard's ``/api/serve/applications/``) and, once its own
replica is STOPPING, runs :meth:`LiveHub.drain` with the time left: every session gets ``go_away``
with ``seconds_left = grace_s``, no new question is taken, running answers may finish, and the
sessions end with a fatal ``going_away`` error before Serve kills the process (its
``graceful_shutdown_timeout_s`` is ``grace_s + drain_poll_s + DRAIN_SLACK_S``: the poll may
notice the drain up to ``drain_poll_s`` late).

The controller lookup uses Ray internals (the controller's actor name and its
``get_deployment_details`` method), isolated in :func:`replica_state`. If a Ray upgrade breaks it,
the watcher logs once and stops: clients then see their connection close when the replica is
killed, as after a crash.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

__all__ = ["DRAIN_SLACK_S", "GONE", "DrainWatcher", "replica_state"]

log = logging.getLogger("streamer.serve")

GONE = "GONE"  # replica_state(): the controller does not list this replica any more
DRAIN_SLACK_S = 3.0  # seconds Serve waits beyond grace_s + drain_poll_s (the last messages, the close)


async def replica_state(app: str, deployment: str, replica_tag: str) -> str | None:
    """This replica's state as the Serve controller sees it ("RUNNING", "STOPPING", ...).

    ``GONE`` when the controller no longer lists it (its application is being deleted).
    """
    import ray
    from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

    controller = ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
    try:
        details = await controller.get_deployment_details.remote(app, deployment)
    except KeyError:  # raised in the controller: the application or deployment is gone
        return GONE
    for replica in details.replicas:
        if replica.replica_id == replica_tag:
            return str(getattr(replica.state, "value", replica.state))
    return GONE


class DrainWatcher:
    """Polls ``state()`` and calls ``drain(seconds_left)`` once the replica is STOPPING."""

    def __init__(
        self,
        state: Callable[[], Awaitable[str | None]],
        drain: Callable[[float], Awaitable[None]],
        grace_s: float,
        poll_s: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.state, self.drain, self.grace_s, self.poll_s, self.clock = state, drain, grace_s, poll_s, clock
        self.draining_since: float | None = None  # monotonic seconds when the drain was noticed

    async def run(self) -> None:
        """Until the drain is done (or the lookup fails for good); cancel it to stop early."""
        failures = 0
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                state = await self.state()
                failures = 0
            except Exception as exc:  # the controller is restarting, or Ray changed its internals
                failures += 1
                log.debug("drain watcher: state lookup failed: %r", exc)
                if failures == 30:
                    log.warning(
                        "drain watcher: cannot read this replica's state (%r); no go_away notices", exc
                    )
                    return
                continue
            if state in ("STOPPING", GONE):
                self.draining_since = self.clock()
                await self.drain(self.grace_s)
                return
