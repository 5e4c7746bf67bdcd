"""Walks of the served OpenAPI spec, so that a route added tomorrow is covered without editing these tests:

* every operation refuses a missing, malformed, unknown or revoked key with the same 401 (the routes that are
  public on purpose are listed below, each with its reason), and no route outside the spec escapes the walk;
* no resource of one tenant is visible to another: every operation with a path id answers another tenant's id
  exactly like a missing one (404), and every list leaks none of the other tenant's ids;
* the pages served outside the spec without a key (the spec, its viewers, the UI shells and their assets) answer
  the same bytes with or without a key, for any id: they hold no tenant data.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from fastapi.staticfiles import StaticFiles
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from starlette.routing import BaseRoute, Mount, Route

from api.routes import ui
from ecoalign.content import Request
from ecoalign.reviews import service as review_service
from ecoalign.settings import Settings
from ecoalign.store import tenants
from ecoalign.store.db import session_scope
from tests.api.conftest import TenantKey, job_body, make_settings

pytestmark = pytest.mark.postgres

# Public on purpose, each with its reason. Anything else must refuse a request without a valid key.
PUBLIC = {
    ("get", "/healthz"): "liveness probe: orchestrators call it without keys, and it says only 'the process answers'",
    ("get", "/readyz"): "readiness probe: load balancers call it without keys; it names dependencies, no tenant data",
    ("get", "/metrics"): "Prometheus scrapes it without keys: volumes, no tenant data (keep it on an internal network)",
}
# Served outside the spec, without a key, each with its reason: the spec, its viewers, and the static shells of the
# UI pages (their scripts call the API with the key the user gives, so the pages themselves hold no data). Only GET;
# never under /v1. test_public_pages_outside_the_spec_hold_no_tenant_data checks that each answers the same bytes
# with and without a key, to either tenant, for any id.
PUBLIC_UNLISTED = {
    "/openapi.json": "the spec: it describes the API, it holds no data",
    "/docs": "Swagger UI (fastapi-offline): a static page that renders /openapi.json",
    "/docs/oauth2-redirect": "Swagger UI's OAuth2 redirect page: static HTML (the API uses no OAuth2)",
    "/redoc": "ReDoc (fastapi-offline): a static page that renders /openapi.json",
    "/static-offline-docs": "the docs pages' scripts, styles and icon: files of the installed fastapi-offline package",
    "/ui/jobs/{job_id}": "the trace viewer's shell, the same bytes for every id: its script reads /v1/jobs with a key",
    "/ui/assets/{name}": "the viewer's scripts and styles: files of installed packages (pyvis, plotly) and api/ui",
    "/ui/reviews": "the reviewer page's shell: static HTML whose script calls /v1/reviews with the key typed in",
}

# A path parameter names the kinds of resource it may point at (each is tried); a new tenant-scoped parameter must
# be added here and to tenant_resources (the isolation walk fails on an unknown name rather than skip it).
PATH_ID_KINDS: dict[str, tuple[str, ...]] = {
    "job_id": ("job",),
    "file_id": ("file",),
    "batch_id": ("batch",),
    "policy_id": ("policy",),
    "version": ("policy version",),
    "task_id": ("review task",),
    "trace_id": ("job", "moderation trace"),  # GET /v1/traces/{id}: a job's id or a moderation decision's trace_id
    "endpoint_id": ("webhook endpoint",),
    "delivery_id": ("webhook delivery",),
    "audit_id": ("audit",),
}
# Where a parameter names fewer kinds than its name says: a moderation result is a moderation decision's only.
PATH_ID_KINDS_AT: dict[tuple[str, str], tuple[str, ...]] = {
    ("/v1/moderation_results/{trace_id}", "trace_id"): ("moderation trace",),
}
# Integer ids: small numbers, not unique across tenants in a page's text (they are compared as ids instead).
NUMBERED = {"policy version", "webhook delivery"}
# A number within its parent (B's policy has a version 1 too), not the id of an object of its own.
RELATIVE = {"policy version"}

# A minimal valid body of each operation with a path id that takes one, so another tenant's call reaches the
# handler (and its 404) rather than the validation's 422. The walk fails on such an operation without an entry.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/v1/policies/{policy_id}/versions"): {"document": {}},
    ("post", "/v1/reviews/{task_id}/decision"): {"verdict": "allow"},
}
TEXT = "How do I bake bread?"
AUDIT_BODY = {"traces": [{"id": "walk", "prompt": TEXT, "steps": ["Mix flour, water and yeast."],
                          "answer": "Knead, let it rise, bake it."}], "evaluator": ["heuristic"]}
WEBHOOK_URL = "http://127.0.0.1:9/walk"  # never called: no delivery is attempted in these tests


class BatchRecorder:
    def __call__(self, task: str, batch_id: str) -> bool:
        return True


@pytest.fixture
def api_settings(pg_url: str, broker_url: str) -> Settings:
    """The API tests' settings, with loopback webhook URLs allowed (the endpoints are registered, never called)."""
    return make_settings(pg_url, broker_url, webhook_allow_loopback=True)


@pytest.fixture
def walk_client(app: FastAPI) -> Iterator[TestClient]:
    app.state.batch_dispatcher = BatchRecorder()
    with TestClient(app) as c:
        yield c


def operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    spec = client.get("/openapi.json").json()
    return [(method, path, op) for path, ops in spec["paths"].items() for method, op in ops.items()]


def path_params(path: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", path)


def fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)


def send(client: TestClient, method: str, url: str, headers: dict[str, str], body: dict[str, Any] | None = None) -> Any:
    """A request with a minimal body for its kind (the key is judged before the body)."""
    if method == "post" and url == "/v1/files":
        return client.post(url, headers=headers, data={"purpose": "batch"}, files={"file": ("a.jsonl", b"{}\n")})
    if method in ("post", "put", "patch"):
        return client.request(method.upper(), url, headers=headers, json=body if body is not None else {})
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
        url = fill(path, dict.fromkeys(path_params(path), "abc123"))
        for why, headers in bad_headers.items():
            try:
                response = send(walk_client, method, url, headers, BODIES.get((method, path)))
            except UnicodeEncodeError:  # the client library itself will not send a non-latin-1 header
                continue
            assert response.status_code == 401, (method, path, why, response.status_code, response.text)
            assert response.json()["code"] == "unauthorized"
            assert response.headers["WWW-Authenticate"] == "Bearer"
            checked += 1
    assert checked >= 13 * 7  # every /v1 operation, every kind of bad key


def served_routes(app: FastAPI) -> list[tuple[str, BaseRoute, RouteContext]]:
    """Every route the app serves, with its full path: those of included routers too (FastAPI keeps an included
    router as one entry of ``app.routes``, so a loop over ``app.routes`` alone would not see their routes)."""
    served = []
    for context in iter_route_contexts(app.routes):
        assert context.path is not None, context
        served.append((context.path, context.original_route, context))
    return served


def test_no_route_outside_the_spec_escapes_the_walk(app: FastAPI) -> None:
    spec_operations = {(method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops}
    unlisted = set()
    walked = 0
    for path, route, context in served_routes(app):
        if isinstance(route, APIRoute) and context.include_in_schema:
            for method in context.methods or ():
                assert (method, path) in spec_operations, f"{method} {path} is served but missing from the spec"
                walked += 1
            continue
        assert path in PUBLIC_UNLISTED, f"{path} is served outside the spec (so the walks miss it): {route!r}"
        assert not path.startswith("/v1/"), f"{path}: an API route must be in the spec, so the walks cover it"
        if isinstance(route, (APIRoute, Route)):
            assert context.methods is not None, path
            assert context.methods <= {"GET", "HEAD"}, f"{path}: public pages are GET only"
        elif isinstance(route, Mount):
            assert isinstance(route.app, StaticFiles), f"{path} mounts {route.app!r}, not static files"
        else:
            pytest.fail(f"{path}: a route of an unknown kind {route!r}: say here how the walk checks it")
        unlisted.add(path)
    assert unlisted == set(PUBLIC_UNLISTED), "a public page listed above is no longer served: remove it"
    assert walked == len(spec_operations)  # the loop above saw every operation of the spec


# -- the public pages outside the spec ------------------------------------------------------------------------------
def unlisted_url_groups(path: str, route: BaseRoute, mine: dict[str, str], theirs: dict[str, str]) -> list[list[str]]:
    """The URLs to fetch of a public route outside the spec, in groups that must answer the same bytes."""
    if isinstance(route, Mount):
        assert isinstance(route.app, StaticFiles)
        assert route.app.directory is not None
        files = sorted(p.name for p in Path(route.app.directory).iterdir() if p.is_file())
        assert files, f"{path} serves no file"
        return [[f"{path}/{name}"] for name in files]
    if path == "/ui/assets/{name}":
        return [[f"/ui/assets/{name}"] for name in ui.ASSETS]
    params = path_params(path)
    if not params:
        return [[path]]
    assert len(params) == 1, f"say here which URLs of {path} to fetch"
    assert params[0] in PATH_ID_KINDS, f"say here which URLs of {path} to fetch"
    kinds = PATH_ID_KINDS[params[0]]
    ids = [mine[k] for k in kinds] + [theirs[k] for k in kinds] + [missing_id(k) for k in kinds]
    return [[fill(path, {params[0]: value}) for value in ids]]  # a shell: the same bytes for every id


def test_public_pages_outside_the_spec_hold_no_tenant_data(
    app: FastAPI, walk_client: TestClient, sessions: sessionmaker[Session], tenant_a: TenantKey, tenant_b: TenantKey
) -> None:
    mine = tenant_resources(walk_client, sessions, tenant_a)
    theirs = tenant_resources(walk_client, sessions, tenant_b)
    secrets = [tenant_a.key, tenant_b.key] + [v for k, v in {**mine, **theirs}.items() if k not in NUMBERED]
    fetched = set()
    for path, route, _ in served_routes(app):
        if path not in PUBLIC_UNLISTED:
            continue
        for group in unlisted_url_groups(path, route, mine, theirs):
            first = walk_client.get(group[0])
            assert first.status_code == 200, (group[0], first.status_code, first.text[:200])
            for url in group:
                for headers in ({}, tenant_a.headers, tenant_b.headers):
                    response = walk_client.get(url, headers=headers)
                    assert response.status_code == 200, (url, response.status_code)
                    assert response.content == first.content, f"{url} answers differently by key or id"
                    fetched.add(path)
            text = first.content.decode("utf-8", errors="replace")
            assert not [s for s in secrets if s in text], f"{group[0]} shows a tenant's id or key"
    assert fetched == set(PUBLIC_UNLISTED)


# -- tenant isolation -------------------------------------------------------------------------------------------
def missing_id(kind: str) -> str:
    """An id of no resource, valid in form for every path parameter of that kind (so its answer is the 404)."""
    return "999999999" if kind in NUMBERED else "0123456789abcdef0123456789abcdef"


def kinds_at(path: str, param: str) -> tuple[str, ...]:
    kinds = PATH_ID_KINDS_AT.get((path, param)) or PATH_ID_KINDS.get(param)
    assert kinds, f"{path}: add {param} to PATH_ID_KINDS and tenant_resources"
    return kinds


def created(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, (response.request.method, str(response.request.url), response.text)
    return dict(response.json())


def tenant_resources(
    client: TestClient, sessions: sessionmaker[Session], tenant: TenantKey, *, policy_versions: int = 1
) -> dict[str, str]:
    """One resource of each kind for the tenant: {kind: its id}. Over HTTP wherever the API creates it; a review
    task, which only the moderation path opens (for an uncertain item), through ``reviews.service.open_review``."""
    h = tenant.headers
    job = created(client.post("/v1/jobs", headers=h, json=job_body()), 202)
    line = json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/moderations", "body": {"input": "hi"}})
    uploaded = created(client.post("/v1/files", headers=h, data={"purpose": "batch"},
                                   files={"file": ("in.jsonl", (line + "\n").encode(), "application/jsonl")}))
    batch = created(client.post("/v1/batches", headers=h, json={
        "input_file_id": uploaded["id"], "endpoint": "/v1/moderations", "completion_window": "24h"}))
    policy = created(client.post("/v1/policies", headers=h, json={"name": "walk", "document": {}}), 201)
    version = {"version": 1}
    for _ in range(policy_versions - 1):
        version = created(client.post(f"/v1/policies/{policy['id']}/versions", headers=h, json={"document": {}}), 201)
    result = created(client.post("/v1/moderations", headers=h, json={"input": TEXT}))["results"][0]
    audit = created(client.post("/v1/audits", headers=h, json=AUDIT_BODY), 201)
    endpoint = created(client.post("/v1/webhooks", headers=h, json={"url": WEBHOOK_URL, "events": ["job.cancelled"]}))
    # a delivery: the job.cancelled event of another job, cancelled over HTTP
    cancelled = created(client.post("/v1/jobs", headers=h, json=job_body()), 202)
    created(client.post(f"/v1/jobs/{cancelled['id']}/cancel", headers=h))
    deliveries = created(client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=h))["data"]
    assert len(deliveries) == 1, deliveries
    with session_scope(sessions) as s:
        task_id = review_service.open_review(s, tenant_id=tenant.tenant_id, request=Request(TEXT), result=result,
                                             reason="walk")
    assert task_id is not None
    return {
        "job": job["id"], "file": uploaded["id"], "batch": batch["id"], "policy": policy["id"],
        "policy version": str(version["version"]), "moderation trace": result["ecoalign"]["trace_id"],
        "review task": task_id, "audit": audit["id"], "webhook endpoint": endpoint["id"],
        "webhook delivery": deliveries[0]["id"],
    }


def assert_shows_none_of(response: Any, mine: dict[str, str], where: str) -> None:
    """None of ``mine`` in the answer: not in its text (ids unique to their tenant), not among its listed ids."""
    for kind, value in mine.items():
        if kind not in NUMBERED:
            assert value not in response.text, f"{where} shows tenant A's {kind} to tenant B"
    if response.headers.get("content-type", "").startswith("application/json"):
        listed = {str(item.get("id")) for item in response.json().get("data") or [] if isinstance(item, dict)}
        theirs = listed & {v for k, v in mine.items() if k not in RELATIVE}
        assert not theirs, f"{where} lists tenant A's ids to tenant B: {theirs}"


def assert_cursors_disclose_nothing(
    client: TestClient, url: str, op: dict[str, Any], mine: dict[str, str], tenant: TenantKey, where: str
) -> int:
    """A's ids as the page cursor (``after``) of B's list are answered exactly like an id of nothing, so a cursor
    tells B no id of A's exists. (Numbered cursors, ids below a number, disclose nothing of the kind.)"""
    if "after" not in {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}:
        return 0
    nothing = missing_id("any")
    missing = client.get(url, params={"after": nothing}, headers=tenant.headers)
    checked = 0
    for kind, value in mine.items():
        if kind in NUMBERED:
            continue
        response = client.get(url, params={"after": value}, headers=tenant.headers)
        assert response.status_code == missing.status_code, (where, kind, response.status_code, response.text)
        assert response.text.replace(value, nothing) == missing.text, (where, kind, response.text, missing.text)
        checked += 1
    return checked


def owner_choices(params: list[str]) -> list[set[str]]:
    """Which parameters carry tenant A's ids in B's calls: all of them; and, with several, each one alone (the others
    are B's own), so that B's own endpoint does not open A's delivery, nor B's policy A's version."""
    return [set(params)] + ([{p} for p in params] if len(params) > 1 else [])


def a_state(client: TestClient, tenant: TenantKey, mine: dict[str, str]) -> dict[str, Any]:
    """What B's writes (cancels, claims, decisions, new versions, deletes, rotations, redeliveries) must not change."""
    h = tenant.headers
    return {
        "job": created(client.get(f"/v1/jobs/{mine['job']}", headers=h))["status"],
        "batch": created(client.get(f"/v1/batches/{mine['batch']}", headers=h))["status"],
        "policy": created(client.get(f"/v1/policies/{mine['policy']}", headers=h))["latest_version"],
        "review": {k: v for k, v in created(client.get(f"/v1/reviews/{mine['review task']}", headers=h)).items()
                   if k in ("status", "lease", "decided_at", "history")},
        "endpoint": created(client.get(f"/v1/webhooks/{mine['webhook endpoint']}", headers=h)),
        "deliveries": created(client.get(f"/v1/webhooks/{mine['webhook endpoint']}/deliveries", headers=h)),
    }


def test_no_resource_of_one_tenant_is_visible_to_another(
    walk_client: TestClient, sessions: sessionmaker[Session], tenant_a: TenantKey, tenant_b: TenantKey
) -> None:
    mine = tenant_resources(walk_client, sessions, tenant_a, policy_versions=2)  # version 2: A's, not B's
    theirs = tenant_resources(walk_client, sessions, tenant_b)  # B has its own, so its lists are not trivially empty
    before = a_state(walk_client, tenant_a, mine)
    assert before["job"] == "queued"
    assert before["review"]["status"] == "pending"
    walked: set[tuple[str, str]] = set()
    cursors = 0
    for method, path, op in operations(walk_client):
        if (method, path) in PUBLIC:
            continue
        params = path_params(path)
        if not params:
            if method == "get":  # a list: none of A's ids in B's answer
                response = send(walk_client, method, path, tenant_b.headers)
                assert response.status_code == 200, (path, response.text)
                assert_shows_none_of(response, mine, f"GET {path}")
                cursors += assert_cursors_disclose_nothing(walk_client, path, op, mine, tenant_b, f"GET {path}")
            continue
        body = BODIES.get((method, path))
        if op.get("requestBody", {}).get("required") and body is None:
            pytest.fail(f"{method} {path} takes a body: add a minimal valid one to BODIES")
        for kinds in itertools.product(*(kinds_at(path, p) for p in params)):
            kind_of = dict(zip(params, kinds, strict=True))
            for a_params in owner_choices(params):
                url = fill(path, {p: (mine if p in a_params else theirs)[kind_of[p]] for p in params})
                missing_url = fill(path, {p: missing_id(kind_of[p]) if p in a_params else theirs[kind_of[p]]
                                          for p in params})
                response = send(walk_client, method, url, tenant_b.headers, body)
                assert response.status_code != 422, (
                    f"{method} {path}: B's call stopped at validation; fix its body in BODIES", response.text)
                missing = send(walk_client, method, missing_url, tenant_b.headers, body)
                assert missing.status_code == 404, (method, missing_url, missing.status_code, missing.text)
                assert response.status_code == 404, (method, url, response.status_code, response.text)
                assert response.json() == missing.json(), (method, url)  # exactly like a missing one
            if method == "get":
                # the owner does see it (the ids are real, the 404 is the isolation) and B sees its own
                url = fill(path, {p: mine[kind_of[p]] for p in params})
                assert send(walk_client, method, url, tenant_a.headers).status_code == 200, (method, url)
                own_url = fill(path, {p: theirs[kind_of[p]] for p in params})
                own = send(walk_client, method, own_url, tenant_b.headers)
                assert own.status_code == 200, (method, path, own.text)
                assert_shows_none_of(own, mine, f"GET {path} of B's own")
                cursors += assert_cursors_disclose_nothing(walk_client, own_url, op, mine, tenant_b, f"GET {path}")
        walked.add((method, path))
    with_ids = {(m, p) for m, p, _ in operations(walk_client) if path_params(p) and (m, p) not in PUBLIC}
    assert walked == with_ids
    assert len(walked) >= 20
    assert cursors >= 7 * 8  # seven paged lists, eight kinds of A's ids each
    assert set(BODIES) <= with_ids, "BODIES names an operation that is gone"
    assert a_state(walk_client, tenant_a, mine) == before  # B's writes did nothing to A's resources


def test_file_content_is_a_download_never_a_page(walk_client: TestClient, tenant_a: TenantKey) -> None:
    """An uploaded file may hold markup; served back it is an attachment that a browser must not sniff."""
    uploaded = walk_client.post("/v1/files", headers=tenant_a.headers, data={"purpose": "batch"},
                                files={"file": ("x.html", b"<html><script>alert(1)</script></html>\n", "text/html")})
    assert uploaded.status_code == 200, uploaded.text
    content = walk_client.get(f"/v1/files/{uploaded.json()['id']}/content", headers=tenant_a.headers)
    assert content.headers["content-type"].startswith("application/jsonl")
    assert content.headers["x-content-type-options"] == "nosniff"
    assert content.headers["content-disposition"] == f'attachment; filename="{uploaded.json()["id"]}.jsonl"'


# Operations that name a resource in their body rather than their path: (method, path, the kind it names, the body
# naming an id). Another tenant's id there must be answered exactly like an id of nothing.
BODY_REFERENCES: list[tuple[str, str, str, Any]] = [
    ("post", "/v1/batches", "file",
     lambda v: {"input_file_id": v, "endpoint": "/v1/moderations", "completion_window": "24h"}),
    ("post", "/v1/moderations", "policy", lambda v: {"input": TEXT, "ecoalign": {"policy": v}}),
    ("post", "/v1/moderations", "policy", lambda v: {"input": TEXT, "ecoalign": {"policy": {"id": v, "version": 1}}}),
]


def test_ids_of_another_tenant_in_a_body_are_answered_like_ids_of_nothing(
    walk_client: TestClient, sessions: sessionmaker[Session], tenant_a: TenantKey, tenant_b: TenantKey
) -> None:
    mine = tenant_resources(walk_client, sessions, tenant_a)
    spec = {(m, p) for m, p, _ in operations(walk_client)}
    nothing = missing_id("any")
    for method, path, kind, body in BODY_REFERENCES:
        assert (method, path) in spec, f"{method} {path} is gone: remove it from BODY_REFERENCES"
        response = send(walk_client, method, path, tenant_b.headers, body(mine[kind]))
        missing = send(walk_client, method, path, tenant_b.headers, body(nothing))
        assert response.status_code in (404, 422), (method, path, response.status_code, response.text)
        assert response.status_code == missing.status_code, (method, path, response.text, missing.text)
        assert response.text.replace(mine[kind], nothing) == missing.text, (method, path, response.text)
