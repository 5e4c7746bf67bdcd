"""Keys and tenants: 401 without a valid key; another tenant's job is a 404, exactly like a missing one."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.store import tenants
from ecoalign.store.db import session_scope
from ecoalign.store.models import ApiKey
from tests.api.conftest import TenantKey, job_body

pytestmark = pytest.mark.postgres

MISSING = "0" * 32


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer eco_not-a-real-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer " + "x" * 300},
    ],
    ids=["none", "empty", "unknown", "basic", "oversized"],
)
def test_missing_or_invalid_key_is_401(client: TestClient, headers: dict[str, str]) -> None:
    for method, path in [("get", "/v1/jobs"), ("post", "/v1/jobs"), ("get", f"/v1/jobs/{MISSING}"),
                         ("get", f"/v1/jobs/{MISSING}/graph"), ("post", f"/v1/jobs/{MISSING}/cancel")]:
        kwargs = {"json": job_body()} if path == "/v1/jobs" and method == "post" else {}
        response = client.request(method.upper(), path, headers=headers, **kwargs)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["code"] == "unauthorized"


def test_keys_are_stored_hashed_and_revocation_takes_effect(
    client: TestClient, tenant_a: TenantKey, sessions: sessionmaker[Session]
) -> None:
    with session_scope(sessions) as s:
        row = s.scalars(select(ApiKey).where(ApiKey.tenant_id == tenant_a.tenant_id)).one()
        assert row.key_hash == tenants.hash_api_key(tenant_a.key)
        assert tenant_a.key not in (row.key_hash, row.prefix)
    assert client.get("/v1/jobs", headers=tenant_a.headers).status_code == 200
    with session_scope(sessions) as s:
        assert tenants.revoke_key_by_prefix(s, row.prefix) is not None
    assert client.get("/v1/jobs", headers=tenant_a.headers).status_code == 401


def test_tenant_a_cannot_read_cancel_or_list_tenant_b_jobs(
    client: TestClient, tenant_a: TenantKey, tenant_b: TenantKey
) -> None:
    b_job = client.post("/v1/jobs", json=job_body("b's secret"), headers=tenant_b.headers).json()
    nothing = client.get(f"/v1/jobs/{MISSING}", headers=tenant_a.headers)
    assert nothing.status_code == 404
    for method, path in [("GET", f"/v1/jobs/{b_job['id']}"), ("GET", f"/v1/jobs/{b_job['id']}/graph"),
                         ("POST", f"/v1/jobs/{b_job['id']}/cancel")]:
        response = client.request(method, path, headers=tenant_a.headers)
        assert response.status_code == 404, (method, path)
        assert response.json() == nothing.json()  # indistinguishable from a job that does not exist
    assert client.get("/v1/jobs", headers=tenant_a.headers).json()["data"] == []
    # B's job is untouched by A's cancel attempt, and B still sees it.
    assert client.get(f"/v1/jobs/{b_job['id']}", headers=tenant_b.headers).json()["status"] == "queued"
    assert [j["id"] for j in client.get("/v1/jobs", headers=tenant_b.headers).json()["data"]] == [b_job["id"]]


def test_each_key_of_a_tenant_sees_the_same_jobs(
    client: TestClient, tenant_a: TenantKey, sessions: sessionmaker[Session]
) -> None:
    job = client.post("/v1/jobs", json=job_body(), headers=tenant_a.headers).json()
    with session_scope(sessions) as s:
        _, second = tenants.create_api_key(s, tenant_a.tenant_id, name="ci")
    response = client.get(f"/v1/jobs/{job['id']}", headers={"Authorization": f"Bearer {second}"})
    assert response.status_code == 200
