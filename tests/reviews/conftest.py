"""Review-queue fixtures: the app on the real Postgres with the emulator as judge, and items that end up in review
(uncertain for the heuristic scan, with an item budget too small for a judge call)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from ecoalign.store import tenants
from ecoalign.store.db import session_scope
from ecoalign.testing.emulator import EmulatorServer
from tests.api import conftest as api_fixtures
from tests.api.conftest import RecordingDispatcher, TenantKey, make_settings

# The API tests' fixtures, shared here: the broker, sessions on the test database, tenants with keys.
broker_url = api_fixtures.broker_url
sessions = api_fixtures.sessions
make_tenant = api_fixtures.make_tenant
tenant_a = api_fixtures.tenant_a
tenant_b = api_fixtures.tenant_b

VERDICT = json.dumps({"flagged": True, "categories": {"illicit": 0.8}, "rationale": "lock picking"})
TOO_SMALL = {"item_budget": 10}  # under one judge call: decided by the scan alone, then sent to review


@pytest.fixture(scope="module")
def judge() -> Iterator[EmulatorServer]:
    with EmulatorServer(rules=[(r"lock", VERDICT)], model="judge-emu") as emu:
        yield emu


def review_app(pg_url: str, broker_url: str, judge: EmulatorServer, **overrides: Any) -> FastAPI:
    settings = make_settings(pg_url, broker_url, evaluator="heuristic", judge_url=judge.base_url,
                             judge_model="judge-emu", **overrides)
    return create_app(settings, dispatcher=RecordingDispatcher(), queues=lambda: ["celery"])


@pytest.fixture
def review_client(pg_clean_engine: Engine, pg_url: str, broker_url: str, judge: EmulatorServer) -> Iterator[TestClient]:
    with TestClient(review_app(pg_url, broker_url, judge)) as c:
        yield c


@pytest.fixture
def second_key(sessions: sessionmaker[Session]) -> Callable[[TenantKey], TenantKey]:
    """Another API key of the same tenant: a second reviewer."""
    def make(tenant: TenantKey) -> TenantKey:
        with session_scope(sessions) as s:
            _, secret = tenants.create_api_key(s, tenant.tenant_id, name="reviewer-2")
        return TenantKey(tenant.tenant_id, tenant.name, secret)

    return make


def send_to_review(client: TestClient, tenant: TenantKey, text: str, **extra: Any) -> dict[str, Any]:
    """Moderate ``text`` with too small an item budget: the result, which opened a review task."""
    body = {"input": [{"type": "text", "text": text}, *extra.pop("parts", [])], "ecoalign": TOO_SMALL}
    response = client.post("/v1/moderations", json=body, headers=tenant.headers)
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    assert result["ecoalign"]["decision"] == "scan:uncertain-item-budget-too-small", result
    return result
