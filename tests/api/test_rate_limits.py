"""Per-tenant limits over HTTP: requests per second (counted in the machine's real Redis, this run's DB number),
concurrent jobs and Batch lines in flight (counted in Postgres), each a 429 with ``Retry-After``; the chat gateway
and moderation have counters of their own; the ``ecoalign tenants limits`` command sets them."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from ecoalign.quotas import Family, LimitExceeded, RequestRateLimiter
from ecoalign.settings import Settings
from ecoalign.store import tenants
from ecoalign.store.db import session_scope
from tests.api.conftest import RecordingDispatcher, TenantKey, job_body, make_settings
from tests.api.test_cli import ecoalign

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

LIMITS_REDIS_URL = f"redis://127.0.0.1:6379/{os.environ.get('ECOALIGN_TEST_REDIS_DB', '9')}"
MAX_TRIES = 60  # requests sent to find the 429: the window is 1 s, and a loaded machine may be slow


@pytest.fixture
def limits_settings(pg_url: str, broker_url: str) -> Settings:
    try:
        redis.Redis.from_url(LIMITS_REDIS_URL).ping()
    except redis.ConnectionError:
        pytest.skip(f"no Redis at {LIMITS_REDIS_URL}")
    return make_settings(pg_url, broker_url, evaluator="heuristic", rate_limit_storage_url=LIMITS_REDIS_URL)


class BatchRecorder:
    def __call__(self, task: str, batch_id: str) -> bool:
        return True


@pytest.fixture
def limited_app(pg_clean_engine: Engine, limits_settings: Settings) -> FastAPI:
    app = create_app(limits_settings, dispatcher=RecordingDispatcher(), queues=lambda: ["celery"])
    app.state.batch_dispatcher = BatchRecorder()
    return app


@pytest.fixture
def client(limited_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(limited_app) as c:
        yield c


@pytest.fixture
def limited_tenant(
    make_tenant: Callable[..., TenantKey], sessions: sessionmaker[Session]
) -> Callable[..., TenantKey]:
    """A fresh tenant (a random name, so Redis counts of earlier runs never apply) with these limits."""

    def make(**limits: int | None) -> TenantKey:
        tenant = make_tenant(f"limited-{uuid.uuid4().hex[:8]}")
        with session_scope(sessions) as s:
            tenants.set_limits(s, tenant.tenant_id, limits)
        return tenant

    return make


def first_429(send: Callable[[], httpx.Response]) -> tuple[int, httpx.Response]:
    """Send until one answer is a 429: (answers before it, that answer)."""
    for sent in range(MAX_TRIES):
        response = send()
        if response.status_code == 429:
            return sent, response
    raise AssertionError(f"no 429 in {MAX_TRIES} requests")


def assert_retry_after(response: httpx.Response, code: str) -> None:
    assert response.json()["code"] == code
    assert int(response.headers["Retry-After"]) >= 1


def test_requests_per_second_gives_429_with_retry_after_per_tenant(
    client: TestClient, limited_tenant: Callable[..., TenantKey], tenant_b: TenantKey
) -> None:
    tenant = limited_tenant(requests_per_second=3)
    before, refused = first_429(lambda: client.get("/v1/jobs", headers=tenant.headers))
    assert before >= 3  # the window starts empty: the first three always pass
    assert_retry_after(refused, "rate_limited")
    assert "3 api requests per second" in refused.json()["detail"]
    assert client.get("/v1/jobs", headers=tenant_b.headers).status_code == 200  # another tenant's counter


def test_chat_and_moderation_are_counted_apart_from_the_rest(
    client: TestClient, limited_tenant: Callable[..., TenantKey]
) -> None:
    tenant = limited_tenant(requests_per_second=1000, moderation_requests_per_second=1, chat_requests_per_second=1)
    _, refused = first_429(lambda: client.post("/v1/moderations", headers=tenant.headers, json={"input": "hi"}))
    assert_retry_after(refused, "rate_limited")
    assert "moderation requests per second" in refused.json()["detail"]
    # The chat gateway's counter is its own: still empty. The body is invalid on purpose (a 422 needs no model),
    # and the rate is counted before the body is read.
    assert client.post("/v1/chat/completions", headers=tenant.headers, json={}).status_code == 422
    _, chat_refused = first_429(lambda: client.post("/v1/chat/completions", headers=tenant.headers, json={}))
    assert "chat requests per second" in chat_refused.json()["detail"]
    assert client.get("/v1/jobs", headers=tenant.headers).status_code == 200


def test_concurrent_jobs_limit_spares_idempotent_replays(
    client: TestClient, limited_tenant: Callable[..., TenantKey]
) -> None:
    tenant = limited_tenant(max_concurrent_jobs=2)
    first = client.post("/v1/jobs", headers={**tenant.headers, "Idempotency-Key": "k1"}, json=job_body())
    second = client.post("/v1/jobs", headers=tenant.headers, json=job_body())
    assert (first.status_code, second.status_code) == (202, 202)  # the recording dispatcher leaves them queued
    third = client.post("/v1/jobs", headers=tenant.headers, json=job_body())
    assert third.status_code == 429
    assert_retry_after(third, "too_many_concurrent_jobs")
    replay = client.post("/v1/jobs", headers={**tenant.headers, "Idempotency-Key": "k1"}, json=job_body())
    assert replay.status_code == 202
    assert replay.json()["id"] == first.json()["id"]
    assert client.post(f"/v1/jobs/{second.json()['id']}/cancel", headers=tenant.headers).status_code == 200
    assert client.post("/v1/jobs", headers=tenant.headers, json=job_body()).status_code == 202


def _batch_file(client: TestClient, tenant: TenantKey, lines: int) -> str:
    content = "".join(json.dumps({"custom_id": f"c{i}", "method": "POST", "url": "/v1/moderations",
                                  "body": {"input": "hello"}}) + "\n" for i in range(lines))
    uploaded = client.post("/v1/files", headers=tenant.headers, data={"purpose": "batch"},
                           files={"file": ("in.jsonl", content.encode(), "application/jsonl")})
    assert uploaded.status_code == 200, uploaded.text
    return str(uploaded.json()["id"])


def test_batch_lines_in_flight_limit(client: TestClient, limited_tenant: Callable[..., TenantKey]) -> None:
    tenant = limited_tenant(max_batch_lines_in_flight=5)
    body = {"endpoint": "/v1/moderations", "completion_window": "24h"}
    first = client.post("/v1/batches", headers=tenant.headers, json={**body, "input_file_id": _batch_file(
        client, tenant, 3)})
    assert first.status_code == 200, first.text
    # The first batch is not started yet (validating): its 3 lines count from its file. 3 + 3 > 5.
    refused = client.post("/v1/batches", headers=tenant.headers, json={**body, "input_file_id": _batch_file(
        client, tenant, 3)})
    assert refused.status_code == 429
    assert_retry_after(refused, "too_many_batch_lines")
    fits = client.post("/v1/batches", headers=tenant.headers, json={**body, "input_file_id": _batch_file(
        client, tenant, 2)})
    assert fits.status_code == 200, fits.text


def test_the_rate_counter_lets_requests_through_when_redis_is_unreachable() -> None:
    limiter = RequestRateLimiter("redis://127.0.0.1:1/0")  # nothing listens on port 1
    for _ in range(3):
        limiter.check("tenant", Family.API, 1)  # logged, not refused


def test_the_rate_counter_on_real_redis(limits_settings: Settings) -> None:
    limiter = RequestRateLimiter(LIMITS_REDIS_URL)
    tenant = uuid.uuid4().hex
    limiter.check(tenant, Family.CHAT, 1)
    limiter.check(tenant, Family.MODERATION, 1)  # another family: its own counter
    with pytest.raises(LimitExceeded) as refused:
        limiter.check(tenant, Family.CHAT, 1)
    assert refused.value.retry_after_s >= 1
    limiter.check(tenant, Family.CHAT, None)  # no limit: never counted or refused


def test_tenants_limits_command_sets_and_clears(
    pg_clean_engine: Engine, pg_url: str, make_tenant: Callable[..., TenantKey], sessions: sessionmaker[Session]
) -> None:
    tenant = make_tenant("acme-limits")
    done = ecoalign(pg_url, "tenants", "limits", "acme-limits", "--rps", "20", "--chat-rps", "5",
                    "--max-concurrent-jobs", "3")
    assert done.returncode == 0, done.stderr
    assert "rps=20" in done.stdout
    assert "max-concurrent-jobs=3" in done.stdout
    cleared = ecoalign(pg_url, "tenants", "limits", tenant.tenant_id, "--rps", "off", "--max-batch-lines", "1000")
    assert cleared.returncode == 0, cleared.stderr
    with session_scope(sessions) as s:
        row = tenants.get_limits(s, tenant.tenant_id)
        assert row is not None
        assert (row.requests_per_second, row.chat_requests_per_second, row.max_concurrent_jobs,
                row.max_batch_lines_in_flight) == (None, 5, 3, 1000)
    bad = ecoalign(pg_url, "tenants", "limits", "acme-limits", "--rps", "0")
    assert bad.returncode == 2
    assert "at least 1" in bad.stderr
    missing = ecoalign(pg_url, "tenants", "limits", "nobody", "--rps", "1")
    assert missing.returncode == 2
    assert "no tenant" in missing.stderr
