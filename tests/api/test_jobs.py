"""``/v1/jobs`` over HTTP on the real Postgres: submit, read, graph, list, cancel, idempotency, dispatch failures."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.store import repository
from ecoalign.store.db import session_scope
from ecoalign.store.models import JobStatus
from tests.api.conftest import RecordingDispatcher, TenantKey, job_body, png_data_url

pytestmark = pytest.mark.postgres


def submit(client: TestClient, tenant: TenantKey, body: dict | None = None, **headers: str) -> dict:
    response = client.post("/v1/jobs", json=body or job_body(), headers={**tenant.headers, **headers})
    assert response.status_code == 202, response.text
    return response.json()


def test_submit_answers_202_with_the_job_and_dispatches_it(
    client: TestClient, tenant_a: TenantKey, dispatcher: RecordingDispatcher, sessions: sessionmaker[Session]
) -> None:
    body = job_body(policy={"budget": 1234, "tau": 0.6}, strategy="best_of_n")
    body["messages"][0]["content"].append({"type": "image_url", "image_url": {"url": png_data_url()}})  # type: ignore[index]
    response = client.post("/v1/jobs", json=body, headers=tenant_a.headers)
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["object"] == "job"
    assert job["status"] == "queued"
    assert job["decision"] is None
    assert job["response"] is None
    assert job["strategy"] == "best_of_n"
    assert job["budget"] == {"total": 1234, "reserved": 0, "spent": 0}
    assert job["created_at"]
    assert job["started_at"] is None
    assert job["finished_at"] is None
    assert dispatcher.calls == [job["id"]]
    with session_scope(sessions) as s:
        row = repository.get_job(s, job["id"])
        assert row is not None
        assert row.tenant_id == tenant_a.tenant_id  # the ledger charges this tenant's budget
        assert row.policy["tau"] == 0.6
        parts = row.request["messages"][0]["content"]
        assert [p["type"] for p in parts] == ["text", "image_url"]


def test_get_job_and_graph(client: TestClient, tenant_a: TenantKey) -> None:
    job = submit(client, tenant_a)
    got = client.get(f"/v1/jobs/{job['id']}", headers=tenant_a.headers)
    assert got.status_code == 200
    assert got.json() == job
    graph = client.get(f"/v1/jobs/{job['id']}/graph", headers=tenant_a.headers)
    assert graph.status_code == 200
    data = graph.json()
    assert data["job_id"] == job["id"]
    assert data["edges"] == []
    [root] = data["nodes"]
    assert root["kind"] == "root"
    assert root["status"] == "pending"
    assert root["parents"] == []
    assert root["text"] == "How do I bake bread?"
    assert {"safety", "utility", "tokens", "prune_reason", "failure_reason", "attempts"} <= set(root)


def test_graph_shows_edges_scores_and_prune_reasons(
    client: TestClient, tenant_a: TenantKey, sessions: sessionmaker[Session]
) -> None:
    from ecoalign.engine.graph import Node, NodeKind, NodeStatus, node_id

    job = submit(client, tenant_a)
    root_id = node_id(job["id"], NodeKind.ROOT, ())
    child = node_id(job["id"], NodeKind.THOUGHT, (root_id,), 0)
    with session_scope(sessions) as s:
        repository.insert_nodes(s, job["id"], [Node(id=child, kind=NodeKind.THOUGHT, parents=(root_id,), depth=1)])
        attempt = repository.claim_node(s, job["id"], child, lease_seconds=60)
        repository.record_generation(s, job["id"], child, text="step", model="m", tokens_prompt=10,
                                     tokens_completion=5, attempt=attempt)
        repository.record_score(s, job["id"], child, safety=0.2, utility=0.4, categories={"violence": 0.8},
                                evaluator="e", tokens_eval=0, attempt=attempt)
        repository.finish_node(s, job["id"], child, NodeStatus.PRUNED, prune_reason="path safety 0.2 < tau 0.5",
                               attempt=attempt)
    data = client.get(f"/v1/jobs/{job['id']}/graph", headers=tenant_a.headers).json()
    assert data["edges"] == [{"parent": root_id, "child": child}]
    node = next(n for n in data["nodes"] if n["id"] == child)
    assert node["status"] == "pruned"
    assert node["prune_reason"] == "path safety 0.2 < tau 0.5"
    assert node["safety"] == 0.2
    assert node["tokens"] == 15
    assert node["categories"] == {"violence": 0.8}


def test_list_paginates_newest_first_and_filters_by_status(
    client: TestClient, tenant_a: TenantKey, sessions: sessionmaker[Session]
) -> None:
    ids = [submit(client, tenant_a, job_body(f"question {i}"))["id"] for i in range(5)]
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if after:
            params["after"] = after
        page = client.get("/v1/jobs", params=params, headers=tenant_a.headers)
        assert page.status_code == 200, page.text
        data = page.json()
        seen += [j["id"] for j in data["data"]]
        pages += 1
        if not data["has_more"]:
            assert data["next_cursor"] is None
            break
        after = data["next_cursor"]
    assert pages == 3
    assert seen == list(reversed(ids))
    with session_scope(sessions) as s:
        repository.cancel_job(s, ids[0])
    cancelled = client.get("/v1/jobs", params={"status": "cancelled"}, headers=tenant_a.headers).json()
    assert [j["id"] for j in cancelled["data"]] == [ids[0]]


def test_list_rejects_a_bad_cursor_naming_the_parameter(client: TestClient, tenant_a: TenantKey) -> None:
    response = client.get("/v1/jobs", params={"after": "not-a-cursor"}, headers=tenant_a.headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "after"]


def test_cancel_is_idempotent_and_refuses_finished_jobs(
    client: TestClient, tenant_a: TenantKey, sessions: sessionmaker[Session]
) -> None:
    job = submit(client, tenant_a)
    first = client.post(f"/v1/jobs/{job['id']}/cancel", headers=tenant_a.headers)
    assert first.status_code == 200
    assert first.json()["status"] == "cancelled"
    assert first.json()["finished_at"] is not None
    again = client.post(f"/v1/jobs/{job['id']}/cancel", headers=tenant_a.headers)
    assert again.status_code == 200
    assert again.json()["status"] == "cancelled"

    done = submit(client, tenant_a, job_body("another"))
    with session_scope(sessions) as s:
        repository.finish_job(s, done["id"], status=JobStatus.SUCCEEDED, decision="answered", response="ok")
    late = client.post(f"/v1/jobs/{done['id']}/cancel", headers=tenant_a.headers)
    assert late.status_code == 409
    assert late.json()["code"] == "job_finished"
    assert client.get(f"/v1/jobs/{done['id']}", headers=tenant_a.headers).json()["status"] == "succeeded"


def test_idempotency_key_same_body_same_job(
    client: TestClient, tenant_a: TenantKey, dispatcher: RecordingDispatcher
) -> None:
    first = client.post("/v1/jobs", json=job_body(), headers={**tenant_a.headers, "Idempotency-Key": "k-1"})
    second = client.post("/v1/jobs", json=job_body(), headers={**tenant_a.headers, "Idempotency-Key": "k-1"})
    assert first.status_code == second.status_code == 202
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    listed = client.get("/v1/jobs", headers=tenant_a.headers).json()["data"]
    assert [j["id"] for j in listed] == [first.json()["id"]]


def test_idempotency_key_with_another_body_is_a_conflict(client: TestClient, tenant_a: TenantKey) -> None:
    headers = {**tenant_a.headers, "Idempotency-Key": "k-2"}
    assert client.post("/v1/jobs", json=job_body("one"), headers=headers).status_code == 202
    other = client.post("/v1/jobs", json=job_body("two"), headers=headers)
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"
    assert "k-2" in other.json()["detail"]
    budget = client.post("/v1/jobs", json=job_body("one", budget=5), headers=headers)
    assert budget.status_code == 409  # the policy is part of the body


def test_idempotency_keys_are_per_tenant(client: TestClient, tenant_a: TenantKey, tenant_b: TenantKey) -> None:
    a = client.post("/v1/jobs", json=job_body(), headers={**tenant_a.headers, "Idempotency-Key": "shared"})
    b = client.post("/v1/jobs", json=job_body("other"), headers={**tenant_b.headers, "Idempotency-Key": "shared"})
    assert a.status_code == b.status_code == 202
    assert a.json()["id"] != b.json()["id"]


@pytest.mark.parametrize("failure", ["raises", "returns False"])
def test_a_broker_failure_still_accepts_the_durable_job(
    client: TestClient, tenant_a: TenantKey, dispatcher: RecordingDispatcher, failure: str
) -> None:
    """The job row is committed before dispatch; the workers' reaper starts any root never enqueued."""
    if failure == "raises":
        dispatcher.fail = ConnectionError("broker down")
    else:
        dispatcher.refuse = True
    response = client.post("/v1/jobs", json=job_body(), headers=tenant_a.headers)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    assert client.get(f"/v1/jobs/{response.json()['id']}", headers=tenant_a.headers).json()["status"] == "queued"
    metrics = client.get("/metrics").text
    assert "ecoalign_dispatch_deferred_total 1.0" in metrics


def test_a_replay_returns_the_job_as_it_is_now_and_dispatches_nothing(
    client: TestClient, tenant_a: TenantKey, dispatcher: RecordingDispatcher, sessions: sessionmaker[Session]
) -> None:
    headers = {**tenant_a.headers, "Idempotency-Key": "done"}
    job = client.post("/v1/jobs", json=job_body(), headers=headers).json()
    with session_scope(sessions) as s:
        repository.finish_job(s, job["id"], status=JobStatus.SUCCEEDED, decision="refused", response="no")
    replay = client.post("/v1/jobs", json=job_body(), headers=headers)
    assert replay.status_code == 202
    assert replay.json()["id"] == job["id"]
    assert replay.json()["decision"] == "refused"
    assert dispatcher.calls == [job["id"]]


def test_tenant_budget_checked_before_the_job_exists(
    client: TestClient, make_tenant: Callable[..., TenantKey]
) -> None:
    poor = make_tenant(total=10)
    response = client.post("/v1/jobs", json=job_body(), headers=poor.headers)
    assert response.status_code == 402
    assert response.json()["code"] == "tenant_budget_exhausted"
    assert "10 tokens left" in response.json()["detail"]
    assert client.get("/v1/jobs", headers=poor.headers).json()["data"] == []

    daily = make_tenant(daily=10)
    response = client.post("/v1/jobs", json=job_body(), headers=daily.headers)
    assert response.status_code == 429
    assert response.json()["code"] == "tenant_daily_budget_exhausted"
    assert 0 < int(response.headers["retry-after"]) <= 86400

    # A job whose own budget is tiny needs only that much from the tenant.
    assert client.post("/v1/jobs", json=job_body(budget=5), headers=poor.headers).status_code == 202


def test_tenant_budget_counts_what_the_ledger_holds(
    client: TestClient, make_tenant: Callable[..., TenantKey], sessions: sessionmaker[Session]
) -> None:
    from ecoalign.store import ledger

    tenant = make_tenant(total=2000)
    job = submit(client, tenant, job_body(budget=5000))
    with session_scope(sessions) as s:
        # The job's budget is larger than the tenant's: the same ledger refuses what the tenant cannot pay.
        assert not ledger.reserve(s, job["id"], "n-big", "generate", 2500, tenant.tenant_id)
        assert ledger.reserve(s, job["id"], "n-1", "generate", 1900, tenant.tenant_id)
    refused = client.post("/v1/jobs", json=job_body("next"), headers=tenant.headers)
    assert refused.status_code == 402
    assert "100 tokens left" in refused.json()["detail"]


def test_concurrent_submissions_with_one_key_make_one_job(
    app: FastAPI, tenant_a: TenantKey, dispatcher: RecordingDispatcher
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    headers = {**tenant_a.headers, "Idempotency-Key": "race"}

    def post(_: int) -> tuple[int, str]:
        response = TestClient(app).post("/v1/jobs", json=job_body(), headers=headers)
        return response.status_code, response.json()["id"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(post, range(8)))
    assert {status for status, _ in results} == {202}
    assert len({job_id for _, job_id in results}) == 1
    assert len(dispatcher.calls) == 1
