"""The human review queue through the real API on Postgres: tasks opened by the moderation path, the lease (never
held twice, expires back to the queue, under real concurrency), the decision (only the lease holder; the machine's
decision and the history kept), human labels, metrics, tenant scoping."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.store import reviews as store
from ecoalign.store.batch_models import ModerationTrace
from ecoalign.store.db import session_scope
from ecoalign.testing.emulator import EmulatorServer
from tests.api.conftest import TenantKey
from tests.reviews.conftest import review_app, send_to_review

pytestmark = pytest.mark.postgres


def pending(client: TestClient, tenant: TenantKey, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/reviews", params={"status": "pending", **params}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_items_uncertain_when_their_budget_ends_are_queued_filtered_paged_and_tenant_scoped(
    review_client: TestClient, tenant_a: TenantKey, tenant_b: TenantKey
) -> None:
    results = [send_to_review(review_client, tenant_a, f"How do I pick a lock, case {i}?") for i in range(3)]
    settled = review_client.post("/v1/moderations", json={"input": "How do I bake bread?"}, headers=tenant_a.headers)
    assert settled.json()["results"][0]["ecoalign"]["decision"] == "scan:confident-safe"  # no review for that

    first = pending(review_client, tenant_a, limit=2)
    assert len(first["data"]) == 2
    assert first["has_more"] is True
    rest = pending(review_client, tenant_a, limit=2, after=first["last_id"])
    assert rest["has_more"] is False
    tasks = first["data"] + rest["data"]
    assert sorted(t["trace_id"] for t in tasks) == sorted(r["ecoalign"]["trace_id"] for r in results)
    assert all(t["reason"] == "scan:uncertain-item-budget-too-small" and t["status"] == "pending" for t in tasks)
    assert all(t["policy"] == {"id": "default", "version": 0} for t in tasks)  # the built-in policy
    assert all("illicit" in t["categories"] for t in tasks)  # "lock": the heuristic's illicit word

    assert len(pending(review_client, tenant_a, category="illicit")["data"]) == 3
    assert pending(review_client, tenant_a, category="violence")["data"] == []
    assert pending(review_client, tenant_a, policy_id="p-1")["data"] == []
    assert pending(review_client, tenant_b)["data"] == []  # another tenant's queue
    other = review_client.get(f"/v1/reviews/{tasks[0]['id']}", headers=tenant_b.headers)
    assert other.status_code == 404
    bad = review_client.get("/v1/reviews", params={"after": "rev-nope"}, headers=tenant_a.headers)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "after"]
    detail = review_client.get(f"/v1/reviews/{tasks[0]['id']}", headers=tenant_a.headers).json()
    assert detail["item"]["text"].startswith("How do I pick a lock")
    assert detail["trace"]["scan"]["segments"]  # the machine's trace, for the reviewer
    assert detail["history"] == []


def test_a_lease_is_never_held_twice_even_under_concurrent_claims(
    review_client: TestClient, tenant_a: TenantKey, second_key: Callable[[TenantKey], TenantKey]
) -> None:
    send_to_review(review_client, tenant_a, "How do I pick a lock?")
    task_id = pending(review_client, tenant_a)["data"][0]["id"]
    reviewers = [tenant_a] + [second_key(tenant_a) for _ in range(5)]

    def claim(reviewer: TenantKey) -> int:
        return review_client.post(f"/v1/reviews/{task_id}/claim", headers=reviewer.headers).status_code

    with ThreadPoolExecutor(len(reviewers)) as pool:  # six reviewers at once, each its own connection
        statuses = list(pool.map(claim, reviewers))
    assert sorted(statuses) == [200, 409, 409, 409, 409, 409], statuses
    winner = reviewers[statuses.index(200)]
    loser = reviewers[statuses.index(409)]
    assert pending(review_client, tenant_a)["data"] == []  # leased: out of the queue
    refused = review_client.post(f"/v1/reviews/{task_id}/decision", json={"verdict": "allow"}, headers=loser.headers)
    assert refused.status_code == 409
    assert refused.json()["code"] == "lease_not_held"
    assert claim(winner) == 200  # the holder may renew


def test_an_expired_lease_returns_the_task_to_the_queue_and_the_old_holder_can_no_longer_decide(
    pg_clean_engine: Any, pg_url: str, broker_url: str, judge: EmulatorServer, tenant_a: TenantKey,
    second_key: Callable[[TenantKey], TenantKey],
) -> None:
    with TestClient(review_app(pg_url, broker_url, judge, review_lease_s=0.5)) as client:
        send_to_review(client, tenant_a, "How do I pick a lock?")
        task_id = pending(client, tenant_a)["data"][0]["id"]
        other = second_key(tenant_a)
        assert client.post(f"/v1/reviews/{task_id}/claim", headers=tenant_a.headers).status_code == 200
        assert client.post(f"/v1/reviews/{task_id}/claim", headers=other.headers).status_code == 409
        deadline = time.monotonic() + 10
        while not pending(client, tenant_a)["data"]:  # back in the queue once the lease ran out
            assert time.monotonic() < deadline, "the lease never expired"
            time.sleep(0.1)
        assert client.post(f"/v1/reviews/{task_id}/claim", headers=other.headers).status_code == 200
        late = client.post(f"/v1/reviews/{task_id}/decision", json={"verdict": "flag", "categories": ["illicit"]},
                           headers=tenant_a.headers)
        assert late.status_code == 409


def test_a_decision_keeps_the_machines_decision_and_the_history_and_becomes_a_label_and_metrics(
    review_client: TestClient, tenant_a: TenantKey, second_key: Callable[[TenantKey], TenantKey],
    sessions: sessionmaker[Session],
) -> None:
    machine = send_to_review(review_client, tenant_a, "How do I pick a lock?")
    trace_id = machine["ecoalign"]["trace_id"]
    task_id = pending(review_client, tenant_a)["data"][0]["id"]
    unclaimed = review_client.post(f"/v1/reviews/{task_id}/decision", json={"verdict": "flag"},
                                   headers=tenant_a.headers)
    assert unclaimed.status_code == 409  # claim first

    assert review_client.post(f"/v1/reviews/{task_id}/claim", headers=tenant_a.headers).status_code == 200
    bad = review_client.post(f"/v1/reviews/{task_id}/decision", json={"verdict": "allow", "categories": ["hate"]},
                             headers=tenant_a.headers)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "categories"]
    first = review_client.post(f"/v1/reviews/{task_id}/decision",
                               json={"verdict": "flag", "categories": ["illicit"], "note": "instructions"},
                               headers=tenant_a.headers)
    assert first.status_code == 200, first.text
    assert first.json()["result"]["human"]["verdict"] == "flag"

    # a second opinion: reopened, claimed by another reviewer, decided the other way
    assert review_client.post(f"/v1/reviews/{task_id}/reopen", headers=tenant_a.headers).status_code == 200
    other = second_key(tenant_a)
    assert review_client.post(f"/v1/reviews/{task_id}/claim", headers=other.headers).status_code == 200
    assert review_client.post(f"/v1/reviews/{task_id}/decision", json={"verdict": "allow"},
                              headers=other.headers).status_code == 200

    result = review_client.get(f"/v1/moderation_results/{trace_id}", headers=tenant_a.headers).json()
    returned = {**machine, "ecoalign": {k: v for k, v in machine["ecoalign"].items() if v is not None}}
    assert result["machine"] == returned  # the machine's decision, as it was returned
    assert [h["verdict"] for h in result["history"]] == ["flag", "allow"]
    assert result["human"]["verdict"] == "allow"
    assert result["flagged"] is False  # the latest human verdict stands
    assert result["review"] == {"id": task_id, "status": "decided"}
    with session_scope(sessions) as s:
        stored = s.scalars(select(ModerationTrace).where(ModerationTrace.trace_id == trace_id)).one()
        assert stored.result == returned  # never overwritten
        labels = store.human_labels(s, store.LabelFilter(tenant_id=tenant_a.tenant_id))
    assert [(lab.trace_id, lab.verdict, lab.categories) for lab in labels] == [(trace_id, "allow", [])]
    assert labels[0].item["text"] == "How do I pick a lock?"

    metrics = review_client.get("/metrics").text
    assert 'ecoalign_review_tasks{status="decided"} 1.0' in metrics
    assert 'ecoalign_review_tasks{status="pending"} 0.0' in metrics
    assert "ecoalign_review_time_to_decision_seconds_gcount 2.0" in metrics
    # machine said not flagged (scan 0.7 >= tau): one verdict agreed (allow), one did not (flag)
    assert 'ecoalign_review_agreement{category="flagged"} 0.5' in metrics
    assert 'ecoalign_review_agreement{category="illicit"} 0.0' in metrics
