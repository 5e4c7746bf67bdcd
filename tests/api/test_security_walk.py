"""Walks of the served OpenAPI spec, so that a route added tomorrow is covered without editing these tests:

* every operation refuses a missing, malformed, unknown or revoked key with the same 401 (the routes that are
  public on purpose are listed below, each with its reason), and no route outside the spec escapes the walk;
* no resource of one tenant is visible to another: every operation with a path id answers another tenant's id
  exactly like a missing one (404), and every list leaks none of the other tenant's ids.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from starlette.routing import Route

from ecoalign.store import tenants
from ecoalign.store.db import session_scope
from tests.api.conftest import TenantKey, job_body

pytestmark = pytest.mark.postgres

# Public on purpose, each with its reason. Anything else must refuse a request without a valid key.
PUBLIC = {
    ("get", "/healthz"): "liveness probe: orchestrators call it without keys, and it says only 'the process answers'",
    ("get", "/readyz"): "readiness probe: load balancers call it without keys; it names dependencies, no tenant data",
    ("get", "/metrics"): "Prometheus scrapes it without keys: volumes, no tenant data (keep it on an internal network)",
}
# Served outside the spec: the spec itself and its viewer (they describe the API, they hold no data).
PUBLIC_UNLISTED = {"/openapi.json", "/docs", "/docs/oauth2-redirect"}

# A path parameter names the kind of resource it points at; a new tenant-scoped kind must be added here (the
# isolation walk fails on an unknown name rather than skip it).
PATH_ID_KINDS = {"job_id": "job", "file_id": "file", "batch_id": "batch"}


class BatchRecorder:
    def __call__(self, task: str, batch_id: str) -> bool:
        return True


@pytest.fixture
def walk_client(app: FastAPI) -> Iterator[TestClient]:
    app.state.batch_dispatcher = BatchRecorder()
    with TestClient(app) as c:
        yield c


def operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    spec = client.get("/openapi.json").json()
    return [(method, path, op) for path, ops in spec["paths"].items() for method, op in ops.items()]


def fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)


def send(client: TestClient, method: str, url: str, headers: dict[str, str]) -> Any:
    """A request with a minimal body for its kind (the key is judged before the body)."""
    if method == "post" and url == "/v1/files":
        return client.post(url, headers=headers, data={"purpose": "batch"}, files={"file": ("a.jsonl", b"{}\n")})
    if method in ("post", "put", "patch"):
        return client.request(method.upper(), url, headers=headers, json={})
    return client.request(method.upper(), url, headers=headers)


@pytest.fixture
def revoked_key(make_tenant: Any, sessions: sessionmaker[Session]) -> str:
    tenant: TenantKey = make_tenant("revoked")
    with session_scope(sessions) as s:
        key = tenants.find_api_key(s, tenant.key)
        assert key is not None
        assert tenants.revoke_api_key(s, key.id)
    return tenant.key


def test_every_route_refuses_a_missing_malformed_unknown_or_revoked_key(
    walk_client: TestClient, revoked_key: str
) -> None:
    bad_headers = {
        "missing": {},
        "empty bearer": {"Authorization": "Bearer "},
        "no scheme": {"Authorization": revoked_key},
        "basic": {"Authorization": "Basic ZWNvOmtleQ=="},
        "too long": {"Authorization": "Bearer eco_" + "x" * 300},
        "not UTF-8 safe": {"Authorization": "Bearer eco_\u00e9\u00e9"},
        "unknown": {"Authorization": "Bearer eco_this-key-was-never-issued-0000000000000000"},
        "revoked": {"Authorization": f"Bearer {revoked_key}"},
    }
    checked = 0
    for method, path, op in operations(walk_client):
        if (method, path) in PUBLIC:
            assert "security" not in op, f"{method} {path} is public on purpose but declares security"
            continue
        assert op.get("security") == [{"ApiKey": []}], f"{method} {path} does not declare the API key"
        assert "429" in op["responses"], f"{method} {path}: include its router with responses=api.auth.RATE_LIMITED"
        url = fill(path, dict.fromkeys(re.findall(r"\{(\w+)\}", path), "abc123"))
        for why, headers in bad_headers.items():
            try:
                response = send(walk_client, method, url, headers)
            except UnicodeEncodeError:  # the client library itself will not send a non-latin-1 header
                continue
            assert response.status_code == 401, (method, path, why, response.status_code, response.text)
            assert response.json()["code"] == "unauthorized"
            assert response.headers["WWW-Authenticate"] == "Bearer"
            checked += 1
    assert checked >= 13 * 7  # every /v1 operation, every kind of bad key


def test_no_route_outside_the_spec_escapes_the_walk(app: FastAPI) -> None:
    spec_paths = set(app.openapi()["paths"])
    for route in app.routes:
        if isinstance(route, APIRoute):
            assert route.include_in_schema, f"{route.path} is hidden from the spec, so the auth walk misses it"
            assert route.path in spec_paths
        elif isinstance(route, Route):
            assert route.path in PUBLIC_UNLISTED, f"{route.path} is served outside the spec"


# -- tenant isolation -------------------------------------------------------------------------------------------
def tenant_resources(client: TestClient, tenant: TenantKey) -> dict[str, str]:
    """One resource of each kind, created over HTTP: {path parameter name: its id}."""
    job = client.post("/v1/jobs", headers=tenant.headers, json=job_body())
    assert job.status_code == 202, job.text
    line = json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/moderations", "body": {"input": "hi"}})
    uploaded = client.post("/v1/files", headers=tenant.headers, data={"purpose": "batch"},
                           files={"file": ("in.jsonl", (line + "\n").encode(), "application/jsonl")})
    assert uploaded.status_code == 200, uploaded.text
    batch = client.post("/v1/batches", headers=tenant.headers, json={
        "input_file_id": uploaded.json()["id"], "endpoint": "/v1/moderations", "completion_window": "24h"})
    assert batch.status_code == 200, batch.text
    return {"job_id": job.json()["id"], "file_id": uploaded.json()["id"], "batch_id": batch.json()["id"]}


def test_no_resource_of_one_tenant_is_visible_to_another(
    walk_client: TestClient, tenant_a: TenantKey, tenant_b: TenantKey
) -> None:
    ids = tenant_resources(walk_client, tenant_a)
    tenant_resources(walk_client, tenant_b)  # B has resources of its own, so its lists are not trivially empty
    by_id_routes = 0
    for method, path, _ in operations(walk_client):
        if (method, path) in PUBLIC:
            continue
        params = re.findall(r"\{(\w+)\}", path)
        unknown = set(params) - set(PATH_ID_KINDS)
        assert not unknown, f"{method} {path}: add {unknown} to PATH_ID_KINDS and tenant_resources"
        if params:
            url = fill(path, ids)
            response = send(walk_client, method, url, tenant_b.headers)
            missing = send(walk_client, method, fill(path, dict.fromkeys(params, "nonexistent0")), tenant_b.headers)
            assert response.status_code == 404, (method, url, response.status_code, response.text)
            assert response.json() == {**missing.json(), "detail": response.json()["detail"]}  # same as missing
            assert response.json()["detail"] == missing.json()["detail"]
            if method == "get":  # the owner does see it: the ids are real, the 404 is the isolation
                assert send(walk_client, method, url, tenant_a.headers).status_code == 200, (method, url)
            by_id_routes += 1
        elif method == "get":  # a list: none of A's ids in B's answer
            response = send(walk_client, method, path, tenant_b.headers)
            assert response.status_code == 200, (path, response.text)
            for kind, value in ids.items():
                assert value not in response.text, f"GET {path} shows tenant A's {kind} to tenant B"
    assert by_id_routes >= 6
    # B's cancels did nothing to A's resources
    job = walk_client.get(f"/v1/jobs/{ids['job_id']}", headers=tenant_a.headers).json()
    assert job["status"] == "queued"
    batch = walk_client.get(f"/v1/batches/{ids['batch_id']}", headers=tenant_a.headers).json()
    assert batch["status"] == "validating"


def test_file_content_is_a_download_never_a_page(walk_client: TestClient, tenant_a: TenantKey) -> None:
    """An uploaded file may hold markup; served back it is an attachment that a browser must not sniff."""
    uploaded = walk_client.post("/v1/files", headers=tenant_a.headers, data={"purpose": "batch"},
                                files={"file": ("x.html", b"<html><script>alert(1)</script></html>\n", "text/html")})
    assert uploaded.status_code == 200, uploaded.text
    content = walk_client.get(f"/v1/files/{uploaded.json()['id']}/content", headers=tenant_a.headers)
    assert content.headers["content-type"].startswith("application/jsonl")
    assert content.headers["x-content-type-options"] == "nosniff"
    assert content.headers["content-disposition"] == f'attachment; filename="{uploaded.json()["id"]}.jsonl"'
