"""The served OpenAPI spec is accurate: declared responses, security, and Schemathesis over every operation.

Schemathesis generates valid and invalid requests from ``/openapi.json`` and checks each response: no 5xx,
status code declared, content type declared, body matches the declared schema, invalid data rejected, auth
enforced. One check is left out on purpose: ``positive_data_acceptance`` (schema-valid data must get 2xx). The
schema can only describe shape; a well-shaped ``image_url`` whose bytes are not an image, or text that is all
whitespace, is rightly refused (422/413), and the tenant budget (402/429) is state, not shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from ecoalign.settings import Settings
from ecoalign.store import tenants
from ecoalign.store.base import new_id
from ecoalign.store.db import session_scope
from ecoalign.store.models import ApiKey
from ecoalign.testing.emulator import EmulatorServer
from tests.api.conftest import RecordingDispatcher, make_settings

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

EXAMPLES_PER_OPERATION = 100
STATEFUL_EXAMPLES = 40  # scenarios of up to 6 linked calls: a bounded run (about a minute on a loaded machine)


def test_every_operation_declares_its_responses_and_the_bearer_scheme(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "API key",
        "description": spec["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    paths = spec["paths"]
    expected: dict[tuple[str, str], set[str]] = {
        ("/v1/jobs", "post"): {"202", "401", "402", "409", "413", "422", "429", "503"},
        ("/v1/jobs", "get"): {"200", "401", "422", "429", "503"},
        ("/v1/jobs/{job_id}", "get"): {"200", "401", "404", "422", "429", "503"},
        ("/v1/jobs/{job_id}/graph", "get"): {"200", "401", "404", "422", "429", "503"},
        ("/v1/jobs/{job_id}/cancel", "post"): {"200", "401", "404", "409", "422", "429", "503"},
        ("/v1/moderations", "post"): {"200", "401", "413", "422", "429", "503"},
        ("/v1/files", "post"): {"200", "401", "413", "422", "429", "503"},
        ("/v1/files/{file_id}", "get"): {"200", "401", "404", "422", "429", "503"},
        ("/v1/files/{file_id}/content", "get"): {"200", "401", "404", "422", "429", "503"},
        ("/v1/batches", "post"): {"200", "401", "404", "422", "429", "503"},
        ("/v1/batches", "get"): {"200", "401", "422", "429", "503"},
        ("/v1/batches/{batch_id}", "get"): {"200", "401", "404", "422", "429", "503"},
        ("/v1/batches/{batch_id}/cancel", "post"): {"200", "401", "404", "409", "422", "429", "503"},
        ("/v1/traces", "get"): {"200", "401", "422", "503"},
        ("/v1/traces/{trace_id}", "get"): {"200", "401", "404", "422", "503"},
        ("/v1/audits", "post"): {"201", "401", "422", "503"},
        ("/v1/audits/{audit_id}", "get"): {"200", "401", "404", "422", "503"},
        ("/v1/audits/{audit_id}/report", "get"): {"200", "401", "404", "422", "503"},
        ("/v1/chat/completions", "post"): {"200", "401", "402", "409", "413", "422", "429", "502", "503", "504"},
        ("/v1/reviews", "get"): {"200", "401", "422", "503"},
        ("/v1/reviews/{task_id}", "get"): {"200", "401", "404", "422", "503"},
        ("/v1/reviews/{task_id}/claim", "post"): {"200", "401", "404", "409", "422", "503"},
        ("/v1/reviews/{task_id}/decision", "post"): {"200", "401", "404", "409", "422", "503"},
        ("/v1/reviews/{task_id}/reopen", "post"): {"200", "401", "404", "409", "422", "503"},
        ("/v1/moderation_results/{trace_id}", "get"): {"200", "401", "404", "422", "503"},
        ("/v1/webhooks", "post"): {"200", "401", "409", "422", "503"},
        ("/v1/webhooks", "get"): {"200", "401", "422", "503"},
        ("/v1/webhooks/{endpoint_id}", "get"): {"200", "401", "404", "422", "503"},
        ("/v1/webhooks/{endpoint_id}", "delete"): {"200", "401", "404", "422", "503"},
        ("/v1/webhooks/{endpoint_id}/rotate-secret", "post"): {"200", "401", "404", "422", "503"},
        ("/v1/webhooks/{endpoint_id}/deliveries", "get"): {"200", "401", "404", "422", "503"},
        ("/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver", "post"): {"200", "401", "404", "422",
                                                                                    "503"},
        ("/v1/policies", "post"): {"201", "401", "422", "503"},
        ("/v1/policies", "get"): {"200", "401", "422", "503"},
        ("/v1/policies/{policy_id}", "get"): {"200", "401", "404", "422", "503"},
        ("/v1/policies/{policy_id}/versions", "post"): {"201", "401", "404", "422", "503"},
        ("/v1/policies/{policy_id}/versions/{version}", "get"): {"200", "401", "404", "422", "503"},
        ("/healthz", "get"): {"200"},
        ("/readyz", "get"): {"200", "503"},
        ("/metrics", "get"): {"200"},
    }
    for key in expected:  # every authenticated operation may be rate limited (api.auth.RATE_LIMITED)
        if key[0].startswith("/v1/"):
            expected[key] |= {"429"}
    assert {(p, m) for p, ops in paths.items() for m in ops} == set(expected)
    for (path, method), codes in expected.items():
        operation = paths[path][method]
        assert set(operation["responses"]) == codes, (path, method)
        for code, response in operation["responses"].items():
            assert response.get("content"), (path, method, code)  # every response has a declared body
        secured = path.startswith("/v1/")
        assert (operation.get("security") == [{"ApiKey": []}]) is secured, (path, method)


def _served_spec_schema() -> Any:
    """The spec as the app serves it. Loaded at import (parametrize needs the operations), from an app that never
    touches its database: the spec depends on code, not settings; the test asserts the real app serves the same."""
    spec_app = create_app(Settings.model_validate({"db_url": "sqlite://"}), dispatcher=lambda _: None)
    return schemathesis.openapi.from_asgi("/openapi.json", spec_app)


schema = _served_spec_schema()
# Cases may be generated before fixtures run (explicit examples at collection), so the key is fixed in advance
# and the fixture below registers it, hashed like any other, for a fresh tenant.
FUZZ_KEY = "eco_schemathesis-fuzz-key-0000000000000000000"


@schema.auth(refresh_interval=None)
class FuzzKeyAuth:
    """A valid key on every case, except those where Schemathesis removes or breaks auth on purpose."""

    def get(self, case: Any, context: Any) -> str:
        return FUZZ_KEY

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture(scope="module")
def fuzz_model() -> Iterator[EmulatorServer]:
    with EmulatorServer(replies=["A short, safe answer."]) as em:
        yield em


@pytest.fixture
def fuzz_app(pg_clean_engine: Engine, pg_url: str, broker_url: str, fuzz_model: EmulatorServer) -> FastAPI:
    """The app with a model behind it: chat completions run in-process (the recording dispatcher runs nothing,
    so a chat request would otherwise wait for workers and time out)."""
    settings_ = make_settings(pg_url, broker_url, evaluator="heuristic", model_url=fuzz_model.base_url, model="emu",
                              chat_mode="inprocess", chat_timeout_s=30.0)
    return create_app(settings_, dispatcher=RecordingDispatcher(), queues=lambda: ["celery"])


@pytest.fixture
def fuzz_tenant(sessions: sessionmaker[Session]) -> str:
    with session_scope(sessions) as s:
        tenant = tenants.create_tenant(s, "fuzz")
        s.add(ApiKey(id=new_id(), tenant_id=tenant.id, key_hash=tenants.hash_api_key(FUZZ_KEY),
                     prefix=FUZZ_KEY[:12], name="schemathesis"))
        return tenant.id


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_schemathesis_every_operation_conforms(case: Any, fuzz_app: FastAPI, fuzz_tenant: str) -> None:
    case.call_and_validate(app=fuzz_app, excluded_checks=[positive_data_acceptance])


def test_the_fuzzed_spec_is_the_served_spec(client: TestClient) -> None:
    assert client.get("/openapi.json").json() == schema.raw_schema


class _BatchRecorder:
    def __call__(self, task: str, batch_id: str) -> bool:
        return True


def test_schemathesis_stateful_workflows(fuzz_app: FastAPI, fuzz_tenant: str) -> None:
    """Follow the spec's links with a valid key: submit a job → get / graph / cancel it; upload a file → get it,
    its content, a batch of it → get / cancel the batch, its input file. No 5xx, every response as the spec says,
    and the links really lead somewhere: each read of a just-created resource is seen answering 200."""
    fuzz_app.state.batch_dispatcher = _BatchRecorder()  # batches stay validating: no worker here
    # The linked families (create -> read) only: with every route of the spec in the machine, a bounded run spends
    # its scenarios on unlinked operations and may never reach a linked read (the stateless run covers them all).
    base = schema.include(path_regex=r"^/v1/(jobs|files|batches)").as_state_machine()
    seen: set[tuple[str, str, int]] = set()

    class Workflow(base):  # type: ignore[valid-type,misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"app": fuzz_app}

        def after_call(self, response: Any, case: Any) -> None:
            seen.add((case.method.upper(), case.path, response.status_code))
            super().after_call(response, case)

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            case.validate_response(
                response,
                additional_checks=additional_checks,
                excluded_checks=[positive_data_acceptance],
                transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

    Workflow.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
    )
    followed = {(method, path) for method, path, status in seen if status == 200 and "{" in path}
    assert ("GET", "/v1/jobs/{job_id}") in followed, sorted(seen)  # links led to real resources, with the key
    assert ("POST", "/v1/files", 200) in seen


def _operation(spec: dict[str, Any], operation_id: str) -> tuple[str, str]:
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if op.get("operationId") == operation_id:
                return method, path
    raise AssertionError(f"no operation {operation_id}")


def _pointer(body: dict[str, Any], expression: str) -> Any:
    assert expression.startswith("$response.body#/"), expression
    return body[expression.removeprefix("$response.body#/")]


def test_every_link_of_a_create_operation_reaches_the_created_resource(
    fuzz_app: FastAPI, fuzz_tenant: str
) -> None:
    """Deterministically, besides the random stateful run: create one resource of each kind, follow each of the
    create operation's links as the spec writes them, and get 200 (the links are right, not only well-formed)."""
    fuzz_app.state.batch_dispatcher = _BatchRecorder()
    headers = {"Authorization": f"Bearer {FUZZ_KEY}"}
    jsonl = b'{"custom_id": "a", "method": "POST", "url": "/v1/moderations", "body": {"input": "hi"}}\n'
    with TestClient(fuzz_app) as client:
        spec = client.get("/openapi.json").json()
        upload = client.post("/v1/files", headers=headers, data={"purpose": "batch"},
                             files={"file": ("a.jsonl", jsonl)})
        job = client.post("/v1/jobs", headers=headers, json={
            "messages": [{"role": "user", "content": "How do I bake bread?"}], "policy": {"budget": 2000}})
        batch = client.post("/v1/batches", headers=headers, json={
            "input_file_id": upload.json()["id"], "endpoint": "/v1/moderations", "completion_window": "24h"})
        created = {("/v1/files", "post"): upload, ("/v1/jobs", "post"): job, ("/v1/batches", "post"): batch}
        followed = 0
        for (path, method), response in created.items():
            assert response.status_code in (200, 202), response.text
            links = spec["paths"][path][method]["responses"][str(response.status_code)]["links"]
            for name, link in links.items():
                target_method, target_path = _operation(spec, link["operationId"])
                url = target_path
                for param, expression in link.get("parameters", {}).items():
                    url = url.replace("{" + param + "}", str(_pointer(response.json(), expression)))
                body = {k: _pointer(response.json(), v) for k, v in link.get("requestBody", {}).items()}
                if body:  # a link that fills part of a body: the rest is what a client would send
                    body |= {"endpoint": "/v1/moderations", "completion_window": "24h"}
                answer = client.request(target_method.upper(), url, headers=headers, json=body or None)
                assert answer.status_code == 200, (path, name, answer.status_code, answer.text)
                followed += 1
    assert followed == 9
