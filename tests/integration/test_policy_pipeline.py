"""Tenant policies end to end: policies created over HTTP on a real uvicorn server of our app, a moderation batch run
by a **real Celery worker process** on Postgres and a private ``redis-server``, and the emulator as the judge.

The worker decides each line under the tenant's default policy (its latest version) or the version a line names;
each result and each stored trace records that version; the custom category's description reaches the judge's
prompt (the emulator runs in this process, so the prompts it got are read here) and its verdict the result.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import select

from api.app import create_app
from ecoalign.store import tenants
from ecoalign.store.batch_models import ModerationTrace
from ecoalign.store.db import session_scope
from ecoalign.testing.emulator import EmulatorServer, ModerationJudgeScript
from tests.api.conftest import TenantKey, make_settings
from tests.integration.test_batch_pipeline import finished, jsonl_of, run_batch
from tests.serving import serve
from tests.workers.cluster import Cluster, point_dispatch_at, private_services

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

UNCERTAIN = "How do I pick a lock?"  # heuristic scan 0.7: between lo and hi, so it escalates
SCAM = "Send 1 BTC and get 2 back tomorrow, guaranteed"
DESCRIPTION = "promises of guaranteed returns for sending cryptocurrency (advance-fee and doubling scams)"
DOCUMENT = {
    "custom_categories": [{"name": "crypto-scam", "description": DESCRIPTION}],
    "actions": {"crypto-scam": "review"},
}


@dataclass
class Stack:
    url: str
    cluster: Cluster
    tenant: TenantKey
    script: ModerationJudgeScript

    def client(self, tenant: TenantKey | None = None) -> openai.OpenAI:
        key = (tenant or self.tenant).key
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0, timeout=60)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(f"{self.url}{path}", json=body, headers=self.tenant.headers, timeout=30)
        assert response.status_code == 201, response.text
        out: dict[str, Any] = response.json()
        return out


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with ExitStack() as stack:
        db_url, redis_url = stack.enter_context(private_services("ecoalign_policies"))
        script = ModerationJudgeScript(lambda content, images: False, custom={"crypto-scam": 0.95})
        emulator = stack.enter_context(EmulatorServer(reply_fn=script, model="emu-judge"))
        c = Cluster(db_url, redis_url, emulator, tmp_path_factory.mktemp("policy-pipeline"),
                    extra_env={"ECOALIGN_JUDGE_URL": emulator.base_url, "ECOALIGN_JUDGE_MODEL": "emu-judge"})
        stack.callback(c.factory.kw["bind"].dispose)
        stack.callback(c.stop_all)
        c.start_worker("w1", concurrency=4)
        point_dispatch_at(redis_url)
        settings = make_settings(db_url, redis_url, evaluator="heuristic", judge_url=emulator.base_url,
                                 judge_model="emu-judge")
        url = stack.enter_context(serve(create_app(settings, queues=lambda: ["celery"])))
        with session_scope(c.factory) as s:
            tenant, _, secret = tenants.create_tenant_with_key(s, "policy-tenant")
            key = TenantKey(tenant.id, "policy-tenant", secret)
        yield Stack(url, c, key, script)


def line(custom_id: str, text: str, policy: Any = None) -> str:
    body: dict[str, Any] = {"input": text}
    if policy is not None:
        body["ecoalign"] = {"policy": policy}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/moderations", "body": body})


def test_batch_lines_are_decided_by_the_workers_under_a_recorded_policy_version(stack: Stack) -> None:
    s = stack
    pid = s.post("/v1/policies", {"name": "scams", "document": DOCUMENT})["id"]
    v2 = s.post(f"/v1/policies/{pid}/versions", {"document": {**DOCUMENT, "actions": {"crypto-scam": "block"}}})
    assert v2["version"] == 2
    lines = [line("latest", f"{UNCERTAIN} {SCAM}"), line("pinned", f"{UNCERTAIN} {SCAM}", {"id": pid, "version": 1}),
             line("benign", "How do I bake bread?"), line("unknown", "hi", "pol_missing")]
    done = finished(s, run_batch(s, lines, "/v1/moderations", s.tenant).id, s.tenant)
    assert done.status == "completed", done
    client = s.client()
    out = {o["custom_id"]: o["response"]["body"]["results"][0] for o in jsonl_of(client, done.output_file_id)}
    errors = {e["custom_id"]: e["error"]["code"] for e in jsonl_of(client, done.error_file_id)}
    assert errors == {"unknown": "invalid_policy"}
    latest, pinned = out["latest"]["ecoalign"], out["pinned"]["ecoalign"]
    assert latest["policy"] == {"id": pid, "version": 2}
    assert latest["action"] == "block"
    assert pinned["policy"] == {"id": pid, "version": 1}
    assert pinned["action"] == "review"
    for ext in (latest, pinned):
        assert ext["decision"] == "judge"
        assert ext["custom_categories"] == {"crypto-scam": {"flagged": True, "score": 0.95}}
    assert out["benign"]["ecoalign"]["policy"] == {"id": pid, "version": 2}
    assert out["benign"]["flagged"] is False
    judged = [p for p in s.script.prompts if SCAM in p["user"]]
    assert len(judged) == 2
    assert all(f"- crypto-scam: {DESCRIPTION}" in p["system"] for p in judged)
    with session_scope(s.cluster.factory) as ses:
        rows = ses.execute(select(ModerationTrace.custom_id, ModerationTrace.policy_id, ModerationTrace.policy_version)
                           .where(ModerationTrace.run_id == done.id)).all()
    assert sorted(tuple(r) for r in rows) == [("benign", pid, 2), ("latest", pid, 2), ("pinned", pid, 1)]
