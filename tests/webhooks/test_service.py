"""``/v1/webhooks`` over HTTP (FastAPI's TestClient on the real Postgres), the outbox in the transaction of the state
change, and delivery attempts in this process against a loopback receiver that verifies with ``standardwebhooks``.
(tests/integration/test_webhooks_pipeline.py runs the same through Celery worker and beat processes.)"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from ecoalign.content import Request
from ecoalign.engine.policy import Policy
from ecoalign.runtime import controller
from ecoalign.settings import Settings
from ecoalign.store import repository
from ecoalign.store.db import run_in_transaction, session_scope
from ecoalign.store.models import JobStatus
from ecoalign.store.webhook_models import WebhookDelivery, WebhookEvent
from ecoalign.webhooks.delivery import deliver, dispatch_due
from tests.api.conftest import RecordingDispatcher, TenantKey, make_settings
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.postgres


@pytest.fixture
def settings(pg_url: str, broker_url: str) -> Settings:
    return make_settings(pg_url, broker_url, webhook_allow_loopback=True, webhook_retry_base_s=0.05,
                         webhook_retry_max_delay_s=0.2, webhook_retry_window_s=30.0, webhook_timeout_s=2.0,
                         webhook_secret_grace_s=0.0)


@pytest.fixture
def client(pg_clean_engine: Any, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, dispatcher=RecordingDispatcher(), queues=lambda: ["celery"])
    with TestClient(app) as c:
        yield c


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def register(client: TestClient, tenant: TenantKey, url: str, events: list[str]) -> dict[str, Any]:
    response = client.post("/v1/webhooks", json={"url": url, "events": events}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def job_of(sessions: sessionmaker[Session], tenant: TenantKey) -> str:
    job_id, _ = run_in_transaction(sessions, lambda s: controller.submit(
        s, Request("How do I bake bread?"), Policy.from_dict({}), tenant_id=tenant.tenant_id))
    return job_id


def events_of(sessions: sessionmaker[Session]) -> list[WebhookEvent]:
    with session_scope(sessions) as s:
        return list(s.scalars(select(WebhookEvent)))


def test_endpoints_are_tenant_scoped_and_the_secret_is_shown_once(
    client: TestClient, tenant_a: TenantKey, tenant_b: TenantKey, receiver: Receiver
) -> None:
    created = register(client, tenant_a, receiver.url, ["batch.completed", "job.succeeded"])
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["batch.completed", "job.succeeded"]
    got = client.get(f"/v1/webhooks/{created['id']}", headers=tenant_a.headers).json()
    assert "secret" not in got
    listed = client.get("/v1/webhooks", headers=tenant_a.headers).json()
    assert [e["id"] for e in listed["data"]] == [created["id"]]
    assert all("secret" not in e for e in listed["data"])
    assert client.get(f"/v1/webhooks/{created['id']}", headers=tenant_b.headers).status_code == 404
    assert client.delete(f"/v1/webhooks/{created['id']}", headers=tenant_b.headers).status_code == 404
    assert client.get("/v1/webhooks", headers=tenant_b.headers).json()["data"] == []
    rotated = client.post(f"/v1/webhooks/{created['id']}/rotate-secret", headers=tenant_a.headers).json()
    assert rotated["secret"] != created["secret"]
    assert rotated["secret_rotated_at"] is not None
    deleted = client.delete(f"/v1/webhooks/{created['id']}", headers=tenant_a.headers).json()
    assert deleted == {"id": created["id"], "object": "webhook_endpoint.deleted", "deleted": True}
    assert client.get(f"/v1/webhooks/{created['id']}", headers=tenant_a.headers).status_code == 404


@pytest.mark.parametrize(("body", "loc"), [
    ({"url": "https://10.0.0.1/hooks", "events": ["batch.completed"]}, ["body", "url"]),
    ({"url": "http://169.254.169.254/latest", "events": ["batch.completed"]}, ["body", "url"]),
    ({"url": "ftp://127.0.0.1/x", "events": ["batch.completed"]}, ["body", "url"]),
    ({"url": "http://127.0.0.1:9/x", "events": ["batch.finished"]}, ["body", "events"]),
    ({"url": "http://127.0.0.1:9/x", "events": []}, ["body", "events"]),
    ({"url": "http://127.0.0.1:9/x"}, ["body", "events"]),
])
def test_bad_endpoints_are_422_naming_the_field(client: TestClient, tenant_a: TenantKey, body: dict[str, Any],
                                               loc: list[str]) -> None:
    response = client.post("/v1/webhooks", json=body, headers=tenant_a.headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][:2] == loc


def test_loopback_is_refused_without_the_test_setting(pg_clean_engine: Any, pg_url: str, broker_url: str,
                                                     tenant_a: TenantKey) -> None:
    app = create_app(make_settings(pg_url, broker_url), dispatcher=RecordingDispatcher(), queues=lambda: ["celery"])
    with TestClient(app) as c:
        response = c.post("/v1/webhooks", json={"url": "https://127.0.0.1/x", "events": ["job.failed"]},
                          headers=tenant_a.headers)
    assert response.status_code == 422
    assert "non-public" in response.json()["detail"][0]["msg"]


def test_the_event_is_written_with_the_change_and_never_for_a_rolled_back_one(
    client: TestClient, tenant_a: TenantKey, tenant_b: TenantKey, sessions: sessionmaker[Session],
    receiver: Receiver,
) -> None:
    register(client, tenant_a, receiver.url, ["job.cancelled", "job.failed"])
    rolled_back = job_of(sessions, tenant_a)

    def cancel_then_fail(s: Session) -> None:
        assert repository.cancel_job(s, rolled_back)
        raise RuntimeError("the transaction rolls back")

    with pytest.raises(RuntimeError):
        run_in_transaction(sessions, cancel_then_fail)
    assert events_of(sessions) == []
    kept = job_of(sessions, tenant_a)
    assert run_in_transaction(sessions, lambda s: repository.cancel_job(s, kept))
    assert not run_in_transaction(sessions, lambda s: repository.cancel_job(s, kept))  # already ended: no event
    other = job_of(sessions, tenant_b)  # tenant b has no endpoint
    run_in_transaction(sessions, lambda s: repository.finish_job(s, other, status=JobStatus.FAILED))
    unsubscribed = job_of(sessions, tenant_a)  # a has no endpoint for job.succeeded
    run_in_transaction(sessions, lambda s: repository.finish_job(s, unsubscribed, status=JobStatus.SUCCEEDED))
    events = events_of(sessions)
    assert [(e.type, e.payload["data"]["id"]) for e in events] == [("job.cancelled", kept)]
    assert events[0].payload["data"]["status"] == "cancelled"


def review_result(trace_id: str) -> dict[str, Any]:
    """A moderation result as the review queue receives it (an OpenAI result object with its extension)."""
    return {"flagged": False, "categories": {"violence": False}, "category_scores": {"violence": 0.4},
            "ecoalign": {"trace_id": trace_id, "decision": "scan:uncertain-item-budget-too-small"}}


def test_a_new_review_task_is_a_review_required_event_in_its_transaction(
    client: TestClient, tenant_a: TenantKey, tenant_b: TenantKey, sessions: sessionmaker[Session],
    receiver: Receiver,
) -> None:
    from ecoalign.reviews.service import open_review

    register(client, tenant_a, receiver.url, ["review.required"])

    def open_for(tenant: TenantKey, trace_id: str, *, fail: bool = False) -> str | None:
        def write(s: Session) -> str | None:
            task = open_review(s, tenant_id=tenant.tenant_id, request=Request("is this ok?"),
                               result=review_result(trace_id), reason="scan:uncertain-item-budget-too-small")
            if fail:
                raise RuntimeError("the transaction rolls back")
            return task
        return run_in_transaction(sessions, write)

    with pytest.raises(RuntimeError):
        open_for(tenant_a, "modt-rolled-back", fail=True)
    assert events_of(sessions) == []
    task = open_for(tenant_a, "modt-kept")
    assert open_for(tenant_a, "modt-kept") is None  # the same decision: no second task, no second event
    open_for(tenant_b, "modt-other")  # tenant b has no endpoint
    events = events_of(sessions)
    assert [(e.type, e.payload["data"]["id"]) for e in events] == [("review.required", task)]
    assert events[0].payload["data"]["trace_id"] == "modt-kept"
    assert events[0].payload["data"]["categories"] == ["violence"]


def wait_until(predicate: Callable[[], Any], timeout_s: float = 15) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
    return value


def test_deliveries_retry_until_the_receiver_verifies_them_and_the_log_says_so(
    client: TestClient, tenant_a: TenantKey, sessions: sessionmaker[Session], settings: Settings,
    receiver: Receiver,
) -> None:
    endpoint = register(client, tenant_a, receiver.url, ["job.cancelled"])
    receiver.secret = endpoint["secret"]
    job_id = job_of(sessions, tenant_a)
    run_in_transaction(sessions, lambda s: repository.cancel_job(s, job_id))
    results: list[str] = []

    def send(_: str, delivery_id: int, attempt: int) -> None:  # the Celery task, in this process
        results.append(deliver(sessions, settings, delivery_id, attempt))

    def sweep() -> list[str]:
        dispatch_due(sessions, settings, send)
        return results

    wait_until(lambda: len(sweep()) >= 2)  # the receiver is down: attempts fail and are retried
    assert set(results) == {"retry"}
    log = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=tenant_a.headers).json()["data"]
    assert log[0]["status"] == "pending"
    assert log[0]["attempts"] >= 2
    assert "ConnectError" in log[0]["last_error"]
    receiver.start()
    wait_until(lambda: "delivered" in sweep())
    assert len(receiver.accepted) == 1
    delivered = receiver.accepted[0]
    assert delivered["body"]["type"] == "job.cancelled"
    assert delivered["body"]["data"]["id"] == job_id
    assert delivered["id"] == log[0]["event_id"]  # the same webhook-id on every attempt
    for _ in range(3):
        sweep()
    assert len(receiver.accepted) == 1  # delivered once, never sent again
    log = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=tenant_a.headers).json()["data"]
    assert (log[0]["status"], log[0]["last_response_code"]) == ("delivered", 204)

    # a rotated secret the receiver does not know yet: its signature check rejects the delivery (400)
    client.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret", headers=tenant_a.headers)
    second = job_of(sessions, tenant_a)
    run_in_transaction(sessions, lambda s: repository.cancel_job(s, second))
    wait_until(lambda: (sweep(), receiver.rejected)[1])
    assert receiver.rejected[0] == "No matching signature found"
    log = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=tenant_a.headers).json()["data"]
    assert (log[0]["status"], log[0]["last_response_code"]) == ("pending", 400)
    assert len(receiver.accepted) == 1

    # a manual redeliver of the first one: the receiver gets the same event id again
    redelivered = client.post(f"/v1/webhooks/{endpoint['id']}/deliveries/{log[1]['id']}/redeliver",
                              headers=tenant_a.headers).json()
    assert redelivered["status"] == "pending"
    receiver.secret = client.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret",
                                  headers=tenant_a.headers).json()["secret"]
    wait_until(lambda: (sweep(), len(receiver.accepted) >= 3)[1])
    assert sorted(a["id"] for a in receiver.accepted).count(log[1]["event_id"]) == 2


def test_a_delivery_gives_up_after_its_window(
    pg_clean_engine: Any, pg_url: str, broker_url: str, tenant_a: TenantKey, sessions: sessionmaker[Session],
    receiver: Receiver,
) -> None:
    settings = make_settings(pg_url, broker_url, webhook_allow_loopback=True, webhook_retry_base_s=0.05,
                             webhook_retry_max_delay_s=0.1, webhook_retry_window_s=0.5, webhook_timeout_s=1.0)
    app = create_app(settings, dispatcher=RecordingDispatcher(), queues=lambda: ["celery"])
    with TestClient(app) as c:
        register(c, tenant_a, receiver.url, ["job.failed"])  # the receiver never comes up
    job_id = job_of(sessions, tenant_a)
    run_in_transaction(sessions, lambda s: repository.finish_job(s, job_id, status=JobStatus.FAILED))
    results: list[str] = []
    wait_until(lambda: dispatch_due(sessions, settings, lambda _, *a: results.append(deliver(sessions, settings, *a)))
               is not None and "failed" in results)
    with session_scope(sessions) as s:
        assert s.scalar(select(func.count()).select_from(WebhookDelivery)
                        .where(WebhookDelivery.status == "failed")) == 1


def test_after_a_rotation_the_old_secret_still_verifies_during_the_grace(
    pg_clean_engine: Any, pg_url: str, broker_url: str, tenant_a: TenantKey, sessions: sessionmaker[Session],
    receiver: Receiver,
) -> None:
    settings = make_settings(pg_url, broker_url, webhook_allow_loopback=True, webhook_secret_grace_s=3600.0)
    app = create_app(settings, dispatcher=RecordingDispatcher(), queues=lambda: ["celery"])
    with TestClient(app) as c:
        endpoint = register(c, tenant_a, receiver.url, ["job.failed"])
        rotated = c.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret", headers=tenant_a.headers).json()
    assert rotated["previous_secret_expires_at"] > rotated["secret_rotated_at"]
    receiver.secret = endpoint["secret"]  # the receiver has not switched yet
    receiver.start()
    job_id = job_of(sessions, tenant_a)
    run_in_transaction(sessions, lambda s: repository.finish_job(s, job_id, status=JobStatus.FAILED))
    results: list[str] = []
    wait_until(lambda: (dispatch_due(sessions, settings, lambda _, *a: results.append(deliver(sessions, settings, *a))),
                        results)[1])
    assert results == ["delivered"]
    signatures = receiver.accepted[0]["headers"]["webhook-signature"].split(" ")
    assert len(signatures) == 2  # new and old: a receiver holding either verifies
