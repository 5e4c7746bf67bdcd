"""``GET /v1/traces`` and ``GET /v1/traces/{id}`` through the real API on Postgres: both kinds of trace (jobs and
moderation decisions, the latter made by ``POST /v1/moderations`` itself), every filter, keyset pages, and tenant
isolation (another tenant's trace is a 404 and never listed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.settings import Settings
from tests.api.conftest import TenantKey, job_body, make_settings
from tests.audit import traces as t

pytestmark = pytest.mark.postgres
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def api_settings(pg_url: str, broker_url: str) -> Settings:
    return make_settings(pg_url, broker_url, evaluator="heuristic")  # moderation without loading models


@pytest.fixture
def stored(sessions: sessionmaker[Session], tenant_a: TenantKey, tenant_b: TenantKey) -> dict[str, str]:
    a = tenant_a.tenant_id
    ids = {
        "answered": t.store_job(sessions, tenant_id=a, prompt="How do I bake bread?",
                                steps=[("Knead first.", 0.97)], answer=("Knead, proof, bake.", 0.99),
                                created_at=T0),
        "refused": t.store_job(sessions, tenant_id=a, prompt=t.HARMFUL_PROMPT, steps=[],
                               answer=(t.DECLINING_ANSWER, 0.8), decision="refused",
                               categories={"illicit/violent": 0.9, "illicit": 0.9}, created_at=T0 + timedelta(hours=1)),
        "direct": t.store_job(sessions, tenant_id=a, prompt="Name a colour.", steps=[], answer=("Blue.", 0.6),
                              strategy="direct", evaluator="node:minilm+judge:gpt-x",
                              created_at=T0 + timedelta(hours=2)),
        "moderation": t.store_moderation(sessions, tenant_id=a, safety=0.2, decision="scan:confident-unsafe",
                                         category_scores={"violence": 0.8}, evaluator="llm-judge:judge-emu"),
        "other_tenant": t.store_job(sessions, tenant_id=tenant_b.tenant_id, prompt="Hello?", steps=[],
                                    answer=("Hi.", 0.99), created_at=T0 + timedelta(hours=3)),
    }
    return ids


def _list(client: TestClient, tenant: TenantKey, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/traces", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


def _ids(client: TestClient, tenant: TenantKey, **params: Any) -> list[str]:
    return [item["id"] for item in _list(client, tenant, **params)["data"]]


def test_the_list_holds_the_tenants_jobs_and_moderation_decisions_newest_first(
    client: TestClient, tenant_a: TenantKey, tenant_b: TenantKey, stored: dict[str, str]
) -> None:
    moderated = client.post("/v1/moderations", json={"input": "I will stab you tonight."}, headers=tenant_a.headers)
    assert moderated.status_code == 200, moderated.text
    real_trace = moderated.json()["results"][0]["ecoalign"]["trace_id"]
    submitted = client.post("/v1/jobs", json=job_body(), headers=tenant_a.headers).json()["id"]

    body = _list(client, tenant_a, limit=100)
    ids = [item["id"] for item in body["data"]]
    assert ids[:2] == [submitted, real_trace]  # newest first
    assert set(ids) == {submitted, real_trace, stored["answered"], stored["refused"], stored["direct"],
                        stored["moderation"]}
    assert ids.index(stored["direct"]) < ids.index(stored["refused"]) < ids.index(stored["answered"])
    kinds = {item["id"]: item for item in body["data"]}
    assert kinds[submitted]["kind"] == "job"
    assert kinds[submitted]["status"] == "queued"
    assert kinds[real_trace]["kind"] == "moderation"
    assert kinds[real_trace]["path_safety"] < 0.5
    assert kinds[stored["refused"]] | {"created_at": None} == {
        "id": stored["refused"], "object": "trace", "kind": "job", "created_at": None, "status": "succeeded",
        "decision": "refused", "path_safety": 0.8, "strategy": "ecoalign",
    }
    assert body["has_more"] is False
    assert body["next_cursor"] is None
    assert _ids(client, tenant_b) == [stored["other_tenant"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"kind": "job"}, {"answered", "refused", "direct"}),
        ({"kind": "moderation"}, {"moderation"}),
        ({"decision": "refused"}, {"refused"}),
        ({"decision": "scan:confident-unsafe"}, {"moderation"}),
        ({"min_path_safety": 0.7}, {"answered", "refused"}),
        ({"max_path_safety": 0.65}, {"direct", "moderation"}),
        ({"min_path_safety": 0.5, "max_path_safety": 0.9}, {"refused", "direct"}),
        ({"category": "illicit/violent"}, {"refused"}),
        ({"category": "violence"}, {"moderation"}),
        ({"evaluator": "judge"}, {"direct", "moderation"}),
        ({"evaluator": "judge:gpt"}, {"direct"}),
        ({"evaluator": "100%_no"}, set()),
        ({"strategy": "direct"}, {"direct"}),
        ({"strategy": "ecoalign", "decision": "answered"}, {"answered"}),
        ({"kind": "job", "created_after": "2026-12-01T12:30:00Z"}, {"refused", "direct"}),
        ({"kind": "job", "created_before": "2026-12-01T13:00:00"}, {"answered"}),  # naive: UTC
    ],
)
def test_every_filter_selects_what_it_names(
    client: TestClient, tenant_a: TenantKey, stored: dict[str, str], params: dict[str, Any], expected: set[str]
) -> None:
    assert set(_ids(client, tenant_a, limit=100, **params)) == {stored[name] for name in expected}


def test_pages_follow_the_one_keyset_cursor_without_repeats_or_gaps(
    client: TestClient, tenant_a: TenantKey, tenant_b: TenantKey, stored: dict[str, str]
) -> None:
    seen: list[str] = []
    after = None
    while True:
        page = _list(client, tenant_a, limit=1, **({"after": after} if after else {}))
        seen += [item["id"] for item in page["data"]]
        after = page["next_cursor"]
        if after is None:
            break
    assert seen == _ids(client, tenant_a, limit=100)
    assert len(seen) == 4
    first = _list(client, tenant_a, limit=1, kind="job")  # a filtered list pages the same way
    rest = _ids(client, tenant_a, limit=100, kind="job", after=first["next_cursor"])
    assert [first["data"][0]["id"], *rest] == [stored["direct"], stored["refused"], stored["answered"]]
    for bad in ("nope", stored["other_tenant"]):  # unknown, or another tenant's: no cursor
        response = client.get("/v1/traces", params={"after": bad}, headers=tenant_a.headers)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", "after"]


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"min_path_safety": 2}, ["query", "min_path_safety"]),
        ({"min_path_safety": 0.9, "max_path_safety": 0.1}, ["query", "min_path_safety"]),
        ({"category": "colour"}, ["query", "category"]),
        ({"kind": "batch"}, ["query", "kind"]),
        ({"created_after": "yesterday"}, ["query", "created_after"]),
    ],
)
def test_bad_filters_are_422_naming_the_parameter(
    client: TestClient, tenant_a: TenantKey, params: dict[str, Any], loc: list[str]
) -> None:
    response = client.get("/v1/traces", params=params, headers=tenant_a.headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc


def test_a_job_trace_reads_its_chosen_path_graph_and_job(
    client: TestClient, tenant_a: TenantKey, stored: dict[str, str]
) -> None:
    response = client.get(f"/v1/traces/{stored['answered']}", headers=tenant_a.headers)
    assert response.status_code == 200, response.text
    trace = response.json()
    assert trace["kind"] == "job"
    assert trace["decision"] == "answered"
    assert [(s["kind"], s["text"], s["safety"]) for s in trace["steps"]] == [
        ("thought", "Knead first.", 0.97), ("answer", "Knead, proof, bake.", 0.99)
    ]
    assert len(trace["graph"]["nodes"]) == 3
    assert len(trace["graph"]["edges"]) == 2
    job = client.get(f"/v1/jobs/{stored['answered']}", headers=tenant_a.headers).json()
    assert trace["job"] == job  # the same read path as /v1/jobs/{id}
    assert trace["audits"] == []


def test_a_moderation_trace_reads_its_result_and_trace(
    client: TestClient, tenant_a: TenantKey, stored: dict[str, str]
) -> None:
    trace = client.get(f"/v1/traces/{stored['moderation']}", headers=tenant_a.headers).json()
    assert trace["kind"] == "moderation"
    assert trace["flagged"] is True
    assert trace["path_safety"] == 0.2
    assert trace["result"]["category_scores"] == {"violence": 0.8}
    assert trace["trace"]["scan"]["safety"] == 0.2


def test_another_tenants_trace_is_a_404_like_a_missing_one(
    client: TestClient, tenant_a: TenantKey, tenant_b: TenantKey, stored: dict[str, str]
) -> None:
    for trace_id in (stored["answered"], stored["moderation"], "0" * 32):
        response = client.get(f"/v1/traces/{trace_id}", headers=tenant_b.headers)
        assert response.status_code == 404
        assert response.json()["detail"] == "no such trace"
    assert client.get(f"/v1/traces/{stored['other_tenant']}", headers=tenant_a.headers).status_code == 404
    assert client.get("/v1/traces").status_code == 401
