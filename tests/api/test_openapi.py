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
        ("/v1/jobs", "get"): {"200", "401", "422", "503"},
        ("/v1/jobs/{job_id}", "get"): {"200", "401", "404", "422", "503"},
        ("/v1/jobs/{job_id}/graph", "get"): {"200", "401", "404", "422", "503"},
        ("/v1/jobs/{job_id}/cancel", "post"): {"200", "401", "404", "409", "422", "503"},
        ("/v1/moderations", "post"): {"200", "401", "413", "422", "503"},
        ("/v1/files", "post"): {"200", "401", "413", "422", "503"},
        ("/v1/files/{file_id}", "get"): {"200", "401", "404", "422", "503"},
        ("/v1/files/{file_id}/content", "get"): {"200", "401", "404", "422", "503"},
        ("/v1/batches", "post"): {"200", "401", "404", "422", "503"},
        ("/v1/batches", "get"): {"200", "401", "422", "503"},
        ("/v1/batches/{batch_id}", "get"): {"200", "401", "404", "422", "503"},
        ("/v1/batches/{batch_id}/cancel", "post"): {"200", "401", "404", "409", "422", "503"},
        ("/v1/traces", "get"): {"200", "401", "422", "503"},
        ("/v1/traces/{trace_id}", "get"): {"200", "401", "404", "422", "503"},
        ("/v1/audits", "post"): {"201", "401", "422", "503"},
        ("/v1/audits/{audit_id}", "get"): {"200", "401", "404", "422", "503"},
        ("/v1/audits/{audit_id}/report", "get"): {"200", "401", "404", "422", "503"},
        ("/v1/chat/completions", "post"): {"200", "401", "402", "409", "413", "422", "429", "502", "503", "504"},
        ("/healthz", "get"): {"200"},
        ("/readyz", "get"): {"200", "503"},
        ("/metrics", "get"): {"200"},
    }
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


def test_schemathesis_stateful_workflows(fuzz_app: FastAPI, fuzz_tenant: str) -> None:
    """Follow the spec's links (submit → get / graph / cancel the job just made) so real jobs are read back."""
    base = schema.as_state_machine()

    class Workflow(base):  # type: ignore[valid-type,misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"app": fuzz_app}

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
            max_examples=30,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
    )
