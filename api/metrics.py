"""Prometheus metrics: HTTP traffic measured in-process, everything else read at scrape time from its source.

Jobs by state, tokens and node latencies come from PostgreSQL (the source of truth, shared by every API and
worker process), queue depth from the broker (Redis ``LLEN``). So one scrape of any API process sees the whole
system, and nothing here can drift from the database. Node latency is a *gauge histogram* over the nodes that
finished in the last ``window_s`` seconds (Prometheus' type for a distribution that can shrink), labelled by kind.

HTTP counters live in a per-app registry; under ``ecoalign serve --workers N`` they use prometheus-client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``), so a scrape sums every worker process.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ecoalign.queue.names import QUEUES
from ecoalign.reviews import service as review_service
from ecoalign.store import reviews, stats
from ecoalign.store.base import utcnow
from ecoalign.store.models import JobStatus

log = logging.getLogger(__name__)

NODE_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
HTTP_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REVIEW_LATENCY_BUCKETS = (60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0, 7 * 24 * 3600.0)
MAX_REVIEW_ROWS = 10_000  # per scrape: the latest verdicts behind time to decision and agreement
MAX_LATENCY_ROWS = 100_000  # per scrape: bounds the cost of the window query on a very busy system
# kombu's Redis transport keeps one list per priority step; step 0 is the queue's own name.
KOMBU_PRIORITY_SEP = "\x06\x16"
KOMBU_PRIORITY_STEPS = (3, 6, 9)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


class HttpMetrics:
    """Request counts and latency by method, route template (not raw path: bounded cardinality) and status,
    and the jobs whose dispatch the broker refused (left for the workers' reaper to start)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.dispatch_deferred = Counter(
            "ecoalign_dispatch_deferred",
            "Jobs accepted while the broker refused their first task; the reaper starts them later",
            registry=registry,
        )
        self.requests = Counter(
            "ecoalign_http_requests",
            "HTTP requests answered, by method, route template and status code",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "ecoalign_http_request_duration_seconds",
            "HTTP request latency in seconds, by method and route template",
            ["method", "route"],
            buckets=HTTP_LATENCY_BUCKETS,
            registry=registry,
        )


class HttpMetricsMiddleware:
    """Pure ASGI middleware (no body buffering): times every HTTP request and counts it once answered."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", None) or "<unmatched>"
            method = scope.get("method", "GET")
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)


class StoreCollector(Collector):
    """Jobs by state, tokens spent, and recent node latency, queried from the database on each scrape."""

    def __init__(self, sessions: sessionmaker[Session], *, window_s: float = 300.0) -> None:
        self.sessions = sessions
        self.window_s = window_s

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("ecoalign_database_up", "1 if the last scrape could read the database")
        try:
            with self.sessions() as session:
                metrics = list(self._read(session))
        except Exception as exc:  # a scrape must never fail because the database is down
            log.warning("metrics: database read failed: %s", exc)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *metrics]

    def _read(self, session: Session) -> Iterable[Metric]:
        jobs = GaugeMetricFamily("ecoalign_jobs", "Jobs in the database by status", labels=["status"])
        counts = stats.jobs_by_status(session)
        for status in JobStatus:
            jobs.add_metric([status.value], int(counts.get(status.value, 0)))
        yield jobs

        spent, reserved = stats.job_tokens(session)
        tokens = CounterMetricFamily("ecoalign_tokens_spent", "Tokens spent by all jobs (settled ledger charges)")
        tokens.add_metric([], spent)
        yield tokens
        held = GaugeMetricFamily("ecoalign_tokens_reserved", "Tokens reserved by in-flight model calls")
        held.add_metric([], reserved)
        yield held

        yield self._latency(session)
        yield from review_metrics(session)

    def _latency(self, session: Session) -> Metric:
        since = utcnow() - timedelta(seconds=self.window_s)
        per_kind = stats.node_latencies(session, since=since, limit=MAX_LATENCY_ROWS)
        family = GaugeHistogramMetricFamily(
            "ecoalign_node_latency_seconds",
            f"Claim-to-finish latency of nodes finished in the last {int(self.window_s)} s, by node kind",
            labels=["kind"],
        )
        for kind, values in sorted(per_kind.items()):
            buckets = [(_le(b), float(sum(v <= b for v in values))) for b in NODE_LATENCY_BUCKETS]
            buckets.append(("+Inf", float(len(values))))
            family.add_metric([kind], buckets, gsum_value=float(sum(values)))
        return family


def review_metrics(session: Session) -> Iterable[Metric]:
    """The human review queue (issue 14): depth by status, time to decision, machine-reviewer agreement."""
    depth = GaugeMetricFamily("ecoalign_review_tasks", "Review tasks by status (pending includes expired leases)",
                              labels=["status"])
    for status, count in reviews.queue_depth(session).items():
        depth.add_metric([status], count)
    yield depth
    rows = reviews.decision_rows(session, limit=MAX_REVIEW_ROWS)
    seconds = [r[0] for r in rows]
    waited = GaugeHistogramMetricFamily(
        "ecoalign_review_time_to_decision_seconds",
        f"Seconds from a review task's creation to its verdict, over the last {MAX_REVIEW_ROWS} verdicts",
    )
    buckets = [(_le(b), float(sum(v <= b for v in seconds))) for b in REVIEW_LATENCY_BUCKETS]
    waited.add_metric([], [*buckets, ("+Inf", float(len(seconds)))], gsum_value=float(sum(seconds)))
    yield waited
    agree = GaugeMetricFamily(
        "ecoalign_review_agreement",
        "Share of verdicts where the machine agreed with the reviewer, per category (over verdicts where either "
        "marked it; 'flagged': flagged or not, over every verdict)",
        labels=["category"],
    )
    count = GaugeMetricFamily("ecoalign_review_agreement_verdicts", "Verdicts behind ecoalign_review_agreement",
                              labels=["category"])
    for category, cell in sorted(review_service.agreement(rows).items()):
        if cell.total:
            agree.add_metric([category], cell.agree / cell.total)
            count.add_metric([category], cell.total)
    yield agree
    yield count


def _le(bound: float) -> str:
    return repr(float(bound))


class QueueCollector(Collector):
    """Messages waiting in each Celery queue, read with ``LLEN`` from the Redis broker."""

    def __init__(self, broker_url: str, queues: Callable[[], Sequence[str]]) -> None:
        self.broker_url = broker_url
        self.queues = queues
        self._client: Any = None

    def describe(self) -> Iterable[Metric]:
        return []

    def _redis(self) -> Any:
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(self.broker_url, socket_timeout=2, socket_connect_timeout=2)
        return self._client

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("ecoalign_broker_up", "1 if the last scrape could read the broker's queues")
        if not self.broker_url.startswith(("redis://", "rediss://", "unix://")):
            return []  # queue depth is only read from a Redis broker
        try:
            names = list(self.queues())
            pipe = self._redis().pipeline(transaction=False)
            for name in names:
                pipe.llen(name)
                for step in KOMBU_PRIORITY_STEPS:
                    pipe.llen(f"{name}{KOMBU_PRIORITY_SEP}{step}")
            lengths = pipe.execute()
        except Exception as exc:
            log.warning("metrics: broker read failed: %s", exc)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        depth = GaugeMetricFamily("ecoalign_queue_depth", "Messages waiting in a Celery queue", labels=["queue"])
        per_queue = 1 + len(KOMBU_PRIORITY_STEPS)
        for i, name in enumerate(names):
            depth.add_metric([name], float(sum(int(n) for n in lengths[i * per_queue : (i + 1) * per_queue])))
        return [up, depth]


def celery_queue_names() -> list[str]:
    """The queues the workers consume (``ecoalign.queue.names``; the Celery app declares exactly these)."""
    return sorted(QUEUES)


def build_registry(
    sessions: sessionmaker[Session],
    broker_url: str,
    queues: Callable[[], Sequence[str]],
    *,
    window_s: float = 300.0,
) -> tuple[CollectorRegistry, HttpMetrics]:
    """The registry ``/metrics`` renders and the HTTP metrics the middleware records into."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
        http = HttpMetrics(registry=None)  # values go to the shared directory, read back by the collector
    else:
        http = HttpMetrics(registry=registry)
    registry.register(StoreCollector(sessions, window_s=window_s))
    registry.register(QueueCollector(broker_url, queues))
    return registry, http
