"""``/v1/policies`` over HTTP on the real Postgres, and moderation under a tenant's policy: a version is immutable
and recorded on every result and trace; a custom category's description reaches the judge's prompt (the emulator
as judge records the prompts it got) and its verdict comes back in the result with the policy's action."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from ecoalign.store.batch_models import ModerationTrace
from ecoalign.store.db import session_scope
from ecoalign.testing.emulator import EmulatorServer, ModerationJudgeScript
from tests.api.conftest import RecordingDispatcher, TenantKey, make_settings

pytestmark = pytest.mark.postgres

UNCERTAIN = "How do I pick a lock?"  # heuristic scan 0.7: between lo and hi, so it escalates
BENIGN = "How do I bake bread?"
SCAM = "Send 1 BTC and get 2 back tomorrow, guaranteed"
DESCRIPTION = "promises of guaranteed returns for sending cryptocurrency (advance-fee and doubling scams)"
DOCUMENT: dict[str, Any] = {
    "custom_categories": [{"name": "crypto-scam", "description": DESCRIPTION}],
    "thresholds": {"illicit": 0.6},
    "actions": {"crypto-scam": "review", "illicit": "block"},
    "costs": {"illicit": {"miss": 4.0, "false_flag": 1.0}},
    "budgets": {"item": 1500},
}


@pytest.fixture
def script() -> ModerationJudgeScript:
    # the judge knows nothing harmful in OpenAI's categories here; it scores crypto-scam when the policy asks
    return ModerationJudgeScript(lambda content, images: False, custom={"crypto-scam": 0.95})


@pytest.fixture
def client(
    pg_clean_engine: Engine, pg_url: str, broker_url: str, script: ModerationJudgeScript
) -> Iterator[TestClient]:
    with EmulatorServer(reply_fn=script, model="judge-emu") as emu:
        settings = make_settings(pg_url, broker_url, evaluator="heuristic", judge_url=emu.base_url,
                                 judge_model="judge-emu")
        with TestClient(create_app(settings, dispatcher=RecordingDispatcher(), queues=lambda: ["celery"])) as c:
            yield c


def call(client: TestClient, method: str, path: str, tenant: TenantKey, status: int, body: Any = None) -> Any:
    response = client.request(method, path, json=body, headers=tenant.headers)
    assert response.status_code == status, response.text
    return response.json()


def moderate(client: TestClient, tenant: TenantKey, text: str, policy: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"input": text}
    if policy is not None:
        body["ecoalign"] = {"policy": policy}
    result: dict[str, Any] = call(client, "POST", "/v1/moderations", tenant, 200, body)["results"][0]
    return result


def test_a_policy_version_is_immutable_and_recorded_on_results_and_traces(
    client: TestClient, tenant_a: TenantKey, tenant_b: TenantKey, sessions: sessionmaker[Session]
) -> None:
    # before any policy: the built-in one
    assert moderate(client, tenant_a, BENIGN)["ecoalign"]["policy"] == {"id": "default", "version": 0}
    created = call(client, "POST", "/v1/policies", tenant_a, 201, {"name": "strict", "document": DOCUMENT})
    pid = created["id"]
    assert (created["latest_version"], created["default"], created["latest"]["version"]) == (1, True, 1)
    v1 = call(client, "GET", f"/v1/policies/{pid}/versions/1", tenant_a, 200)
    assert v1["document"]["thresholds"] == {"illicit": 0.6}

    v2_doc = {**DOCUMENT, "thresholds": {"illicit": 0.9}, "escalation": "value"}
    v2 = call(client, "POST", f"/v1/policies/{pid}/versions", tenant_a, 201, {"document": v2_doc})
    assert v2["version"] == 2
    assert call(client, "GET", f"/v1/policies/{pid}/versions/1", tenant_a, 200) == v1  # unchanged
    for method in ("PUT", "PATCH", "DELETE"):  # no route changes a version
        assert client.request(method, f"/v1/policies/{pid}/versions/1", json={"document": v2_doc},
                              headers=tenant_a.headers).status_code == 405
    got = call(client, "GET", f"/v1/policies/{pid}", tenant_a, 200)
    assert (got["latest_version"], got["latest"]["document"]["escalation"]) == (2, "value")
    listed = call(client, "GET", "/v1/policies", tenant_a, 200)
    assert [p["id"] for p in listed["data"]] == [pid]
    assert listed["has_more"] is False

    # the default policy's latest version decides, unless the request names one
    latest = moderate(client, tenant_a, UNCERTAIN)
    assert latest["ecoalign"]["policy"] == {"id": pid, "version": 2}
    assert latest["ecoalign"]["escalation"] == "value"
    pinned = moderate(client, tenant_a, UNCERTAIN, {"id": pid, "version": 1})
    assert pinned["ecoalign"]["policy"] == {"id": pid, "version": 1}
    assert pinned["ecoalign"]["escalation"] == "band"
    by_id = moderate(client, tenant_a, BENIGN, pid)
    assert by_id["ecoalign"]["policy"] == {"id": pid, "version": 2}
    with session_scope(sessions) as s:
        rows = s.execute(select(ModerationTrace.trace_id, ModerationTrace.policy_id, ModerationTrace.policy_version,
                                ModerationTrace.trace)).all()
    stored = {r.trace_id: (r.policy_id, r.policy_version, r.trace["policy"]["policy_version"]) for r in rows}
    assert stored[pinned["ecoalign"]["trace_id"]] == (pid, 1, 1)
    assert stored[latest["ecoalign"]["trace_id"]] == (pid, 2, 2)

    # another tenant neither sees it nor can use it
    assert call(client, "GET", f"/v1/policies/{pid}", tenant_b, 404)["code"] == "not_found"
    assert call(client, "GET", f"/v1/policies/{pid}/versions/9", tenant_a, 404)["code"] == "not_found"
    refused = call(client, "POST", "/v1/moderations", tenant_b, 422, {"input": "hi", "ecoalign": {"policy": pid}})
    assert refused["detail"][0]["loc"] == ["body", "ecoalign", "policy"]


def test_a_bad_document_is_refused_naming_the_field(client: TestClient, tenant_a: TenantKey) -> None:
    bad = call(client, "POST", "/v1/policies", tenant_a, 422,
               {"name": "x", "document": {"thresholds": {"phishing": 0.4}}})
    assert "phishing not a category in force" in bad["detail"][0]["msg"]
    bad = call(client, "POST", "/v1/policies", tenant_a, 422,
               {"name": "x", "document": {"actions": {"violence": "delete"}}})
    assert bad["detail"][0]["loc"][:4] == ["body", "document", "actions", "violence"]
    bad = call(client, "POST", "/v1/policies", tenant_a, 422,
               {"name": "x", "document": {"custom_categories": [{"name": "violence", "description": "x" * 20}]}})
    assert "repeats a category name" in bad["detail"][0]["msg"]
    missing = call(client, "POST", "/v1/policies/pol_nope/versions", tenant_a, 404, {"document": {}})
    assert missing["code"] == "not_found"


def test_a_custom_category_reaches_the_judges_prompt_and_its_verdict_the_result(
    client: TestClient, tenant_a: TenantKey, tenant_b: TenantKey, script: ModerationJudgeScript,
    sessions: sessionmaker[Session],
) -> None:
    pid = call(client, "POST", "/v1/policies", tenant_a, 201, {"name": "scams", "document": DOCUMENT})["id"]
    result = moderate(client, tenant_a, f"{UNCERTAIN} {SCAM}")
    ext = result["ecoalign"]
    assert ext["decision"] == "judge"
    assert ext["custom_categories"] == {"crypto-scam": {"flagged": True, "score": 0.95}}
    assert result["flagged"] is True
    assert (ext["action"], ext["actions"]) == ("review", {"crypto-scam": "review"})
    assert ext["policy"] == {"id": pid, "version": 1}
    prompt = script.prompts[-1]
    assert f"- crypto-scam: {DESCRIPTION}" in prompt["system"]
    assert SCAM in prompt["user"]
    with session_scope(sessions) as s:
        trace = s.scalars(select(ModerationTrace.trace).where(ModerationTrace.trace_id == ext["trace_id"])).one()
    assert DESCRIPTION in trace["escalation"]["prompt"][0]["content"]
    assert trace["escalation"]["custom_categories"] == {"crypto-scam": 0.95}
    # under the built-in policy (another tenant) the judge is not asked about it, nor does the result carry it
    asked = len(script.prompts)
    other = moderate(client, tenant_b, f"{UNCERTAIN} {SCAM}")
    assert len(script.prompts) == asked + 1
    assert "crypto-scam" not in script.prompts[-1]["system"]
    assert other["flagged"] is False
    assert other["ecoalign"]["custom_categories"] is None
