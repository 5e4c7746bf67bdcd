"""Probes and metrics against the real Postgres and Redis (and against ports where nothing listens)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from ecoalign.engine.graph import NodeStatus, node_id
from ecoalign.store import ledger, repository
from ecoalign.store.db import session_scope
from tests.api.conftest import RecordingDispatcher, TenantKey, job_body, make_settings

pytestmark = pytest.mark.postgres

DEAD_REDIS = "redis://127.0.0.1:1/0"


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_ok_with_database_and_broker(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_readyz_503_names_the_broker(pg_url: str) -> None:
    app = create_app(make_settings(pg_url, DEAD_REDIS), dispatcher=RecordingDispatcher())
    with TestClient(app) as client:
        response = client.get("/readyz")
        healthy = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("error: ")
    assert healthy.status_code == 200  # alive, just not ready


def test_readyz_503_names_the_database(broker_url: str) -> None:
    dead_db = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    app = create_app(make_settings(dead_db, broker_url), dispatcher=RecordingDispatcher())
    with TestClient(app) as client:
        response = client.get("/readyz")
        metrics = client.get("/metrics")
        submit = client.post("/v1/jobs", json=job_body(), headers={"Authorization": "Bearer eco_whatever"})
    assert submit.status_code == 503  # not a 500, and not a 401: we could not check the key
    assert submit.json()["code"] == "database_unavailable"
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == "ok"
    assert response.json()["checks"]["database"].startswith("error: ")
    assert metrics.status_code == 200  # a scrape survives a database outage and says so
    assert "ecoalign_database_up 0.0" in metrics.text


def _sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(\{.*\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return None


def test_metrics_report_jobs_tokens_latency_queues_and_http(
    pg_clean_engine: Engine,
    pg_url: str,
    broker_url: str,
    make_tenant: Callable[..., TenantKey],
    sessions: sessionmaker[Session],
) -> None:
    queue = f"ecoalign-test-{uuid.uuid4().hex[:8]}"
    broker = redis.Redis.from_url(broker_url)
    broker.rpush(queue, "a", "b", "c")
    try:
        app = create_app(make_settings(pg_url, broker_url), dispatcher=RecordingDispatcher(), queues=lambda: [queue])
        tenant = make_tenant()
        with TestClient(app) as client:
            job = client.post("/v1/jobs", json=job_body(), headers=tenant.headers).json()
            client.post("/v1/jobs", json=job_body("two"), headers=tenant.headers)
            client.get("/v1/jobs/" + "0" * 32, headers=tenant.headers)
            root = node_id(job["id"], "root", ())
            with session_scope(sessions) as s:
                repository.start_job(s, job["id"])
                attempt = repository.claim_node(s, job["id"], root, lease_seconds=60)
                repository.finish_node(s, job["id"], root, NodeStatus.DONE, attempt=attempt)
                assert ledger.reserve(s, job["id"], root, "scan", 50)
                ledger.settle(s, job["id"], root, "scan", 42)
            response = client.get("/metrics")
    finally:
        broker.delete(queue)
        broker.close()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert _sample(text, "ecoalign_jobs", status="queued") == 1
    assert _sample(text, "ecoalign_jobs", status="running") == 1
    assert _sample(text, "ecoalign_jobs", status="failed") == 0
    assert _sample(text, "ecoalign_tokens_spent_total") == 42
    assert _sample(text, "ecoalign_tokens_reserved") == 0
    assert _sample(text, "ecoalign_node_latency_seconds_bucket", kind="root", le="+Inf") == 1
    assert _sample(text, "ecoalign_node_latency_seconds_gcount", kind="root") == 1
    assert _sample(text, "ecoalign_queue_depth", queue=queue) == 3
    assert _sample(text, "ecoalign_broker_up") == 1
    assert _sample(text, "ecoalign_database_up") == 1
    assert _sample(text, "ecoalign_http_requests_total", method="POST", route="/v1/jobs", status="202") == 2
    assert _sample(text, "ecoalign_http_requests_total", method="GET", route="/v1/jobs/{job_id}", status="404") == 1
    assert _sample(text, "ecoalign_http_request_duration_seconds_count", method="POST", route="/v1/jobs") == 2


def test_metrics_survive_a_broker_outage(pg_clean_engine: Engine, pg_url: str) -> None:
    app = create_app(make_settings(pg_url, DEAD_REDIS), dispatcher=RecordingDispatcher(), queues=lambda: ["celery"])
    with TestClient(app) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert _sample(response.text, "ecoalign_broker_up") == 0
    assert _sample(response.text, "ecoalign_jobs", status="queued") == 0
