"""Prometheus metrics of a server: engine counters read at scrape time + live-connection events.

One :class:`ServeMetrics` per app, with its own registry (several apps in one process, as in
tests, never collide). It is the :class:`~streamer.serve.live.LiveObserver` of the hub, so the
protocol core records events without importing prometheus.

    streamer_up                                 1 while the engine is healthy
    streamer_sessions                           open engine sessions (all endpoints)
    streamer_live_connections                   open live connections
    streamer_generated_tokens_total             tokens sampled
    streamer_prefill_tokens_total               tokens prefilled
    streamer_decode_tokens_per_second           generated tokens/s over the last scrape interval (>= 1 s)
    streamer_answers_total{finish_reason}       answers ended on live connections
    streamer_ttft_seconds                       histogram: question → first token
    streamer_answer_latency_seconds             histogram: question received → answer_done
    streamer_ingest_seconds{kind}               histogram: server time to take in one frame / audio chunk
    streamer_queued_tokens / _queued_bytes      input queued, not yet prefilled (open sessions)
    streamer_outbound_queued                    server messages waiting to be sent (all connections)
    streamer_dropped_frames_total               frames dropped under overload (all sessions, ever)
    streamer_skipped_frames_total               pictures over a session's fps, never decoded
    streamer_evicted_tokens_total               tokens evicted from KV caches
    streamer_evictions                          eviction rounds of open sessions
    streamer_messages_total{type}               client messages received
    streamer_received_bytes_total               bytes of client messages
    streamer_errors_total{code}                 error messages sent
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from streamer.errors import StreamerError
from streamer.serve.hub import LiveObserver

if TYPE_CHECKING:
    from streamer.serve.hub import LiveHub
    from streamer.serve.messages import AnswerDone

__all__ = ["CONTENT_TYPE", "ServeMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_INGEST_BUCKETS = (5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1)


class ServeMetrics(LiveObserver):
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.hub: LiveHub | None = None  # set by attach()
        r = self.registry
        self.answers = Counter(
            "streamer_answers", "answers ended on live connections", ["finish_reason"], registry=r
        )
        self.ttft = Histogram(
            "streamer_ttft_seconds", "question to first token", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.latency = Histogram(
            "streamer_answer_latency_seconds",
            "question received to answer_done",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ingest = Histogram(
            "streamer_ingest_seconds",
            "server time per frame/audio message",
            ["kind"],
            buckets=_INGEST_BUCKETS,
            registry=r,
        )
        self.messages = Counter("streamer_messages", "client messages received", ["type"], registry=r)
        self.received_bytes = Counter("streamer_received_bytes", "bytes of client messages", registry=r)
        self.skipped = Counter(
            "streamer_skipped_frames", "pictures over a session's fps, never decoded", registry=r
        )
        self.errors = Counter("streamer_errors", "error messages sent", ["code"], registry=r)
        self.connections = 0
        r.register(_EngineCollector(self))

    def attach(self, hub: LiveHub) -> None:
        """Read engine and connection figures from ``hub`` at scrape time."""
        self.hub = hub

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)

    # ---- LiveObserver --------------------------------------------------------------------------
    def connection_opened(self) -> None:
        self.connections += 1

    def connection_closed(self) -> None:
        self.connections -= 1

    def message_received(self, kind: str, nbytes: int) -> None:
        self.messages.labels(kind).inc()
        self.received_bytes.inc(nbytes)

    def ingest_done(self, kind: str, seconds: float) -> None:
        self.ingest.labels(kind).observe(seconds)

    def frame_skipped(self) -> None:
        self.skipped.inc()

    def error_sent(self, code: str) -> None:
        self.errors.labels(code).inc()

    def answer_done(self, done: AnswerDone) -> None:
        self.answers.labels(done.finish_reason).inc()
        if done.ttft_s is not None:
            self.ttft.observe(done.ttft_s)
        if done.latency_s is not None:
            self.latency.observe(done.latency_s)


class _EngineCollector(Collector):
    """Figures read from the engine and the connections when Prometheus scrapes."""

    def __init__(self, owner: ServeMetrics):
        self.owner = owner
        self._rate_mark: tuple[float, int] | None = None  # (time, generated tokens) of an earlier scrape
        self._rate = 0.0

    def describe(self) -> list[Any]:
        return []  # dynamic: collected at scrape time only

    def collect(self) -> Iterator[Any]:
        hub = self.owner.hub
        if hub is None:
            return
        loop = hub.engine.engine
        m = loop.metrics
        health = loop.health()
        yield _gauge("streamer_up", "1 while the engine is healthy", 1.0 if health.ok else 0.0)
        yield _gauge("streamer_sessions", "open engine sessions", loop.num_sessions)
        yield _gauge("streamer_live_connections", "open live connections", self.owner.connections)
        yield _counter("streamer_generated_tokens", "tokens sampled", m.generated_tokens)
        yield _counter("streamer_prefill_tokens", "tokens prefilled", m.prefill_tokens)
        yield _counter("streamer_evicted_tokens", "tokens evicted from KV caches", m.evicted_tokens)
        yield _gauge(
            "streamer_decode_tokens_per_second", "generated tokens/s", self._tokens_per_s(m.generated_tokens)
        )
        queued_tokens = queued_bytes = dropped = evictions = 0
        for sid in loop.session_ids():
            try:
                s = loop.get_session(sid).stats()
            except StreamerError:
                continue  # closed meanwhile
            queued_tokens += s.queued_tokens
            queued_bytes += s.queued_bytes
            dropped += s.dropped_frames
            evictions += s.evictions
        yield _gauge("streamer_queued_tokens", "tokens queued, not yet prefilled", queued_tokens)
        yield _gauge("streamer_queued_bytes", "bytes of media queued", queued_bytes)
        yield _gauge("streamer_evictions", "eviction rounds of open sessions", evictions)
        yield _counter(
            "streamer_dropped_frames", "frames dropped under overload", m.dropped_frames_closed + dropped
        )
        conns = list(hub.connections)
        yield _gauge(
            "streamer_outbound_queued",
            "server messages waiting to be sent",
            sum(p.outbound_queued for p in conns),
        )

    def _tokens_per_s(self, tokens: int) -> float:
        now = time.monotonic()
        if self._rate_mark is None:
            self._rate_mark = (now, tokens)
        elif now - self._rate_mark[0] >= 1.0:
            t0, n0 = self._rate_mark
            self._rate = (tokens - n0) / (now - t0)
            self._rate_mark = (now, tokens)
        return self._rate


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)
