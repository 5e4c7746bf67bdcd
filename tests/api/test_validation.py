"""Bad input: 422 naming the field (whichever layer found it), 413 for what is too large."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.limits import max_body_bytes
from api.schemas import PolicyIn
from ecoalign.engine.policy import Policy
from ecoalign.settings import Settings
from tests.api.conftest import MAX_IMAGE_BYTES, RecordingDispatcher, TenantKey, job_body, png_data_url

pytestmark = pytest.mark.postgres


def _text(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": text}]}]


def _image(url: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


CASES: list[tuple[str, dict[str, Any], list[Any]]] = [
    ("no policy", {"messages": _text("hi")}, ["body", "policy"]),
    ("no budget", {"messages": _text("hi"), "policy": {}}, ["body", "policy", "budget"]),
    ("no messages", {"messages": [], "policy": {"budget": 10}}, ["body", "messages"]),
    ("tau out of range", job_body(policy={"budget": 10, "tau": 2}), ["body", "policy", "tau"]),
    ("unknown policy field", job_body(policy={"budget": 10, "taux": 0.5}), ["body", "policy", "taux"]),
    ("negative budget", job_body(budget=-1), ["body", "policy", "budget"]),
    ("tau_hard above tau", job_body(policy={"budget": 10, "tau": 0.3, "tau_hard": 0.4}),
     ["body", "policy", "tau_hard"]),
    ("unknown strategy", job_body(strategy="yolo"), ["body", "strategy"]),
    ("empty text", {"messages": _text(""), "policy": {"budget": 10}}, ["body", "messages"]),
    ("blank text", {"messages": _text("  \n "), "policy": {"budget": 10}}, ["body", "messages"]),
    ("only a system turn", {"messages": [{"role": "system", "content": "be nice"}], "policy": {"budget": 10}},
     ["body", "messages"]),
    ("bad role", {"messages": [{"role": "robot", "content": "x"}], "policy": {"budget": 10}},
     ["body", "messages", 0, "role"]),
    ("NUL in text", {"messages": _text("a\x00b"), "policy": {"budget": 10}}, ["body", "messages", 0, "content"]),
    ("not an image", {"messages": _image("data:image/png;base64,aGVsbG8="), "policy": {"budget": 10}},
     ["body", "messages", 0, "content", 1]),
    ("remote images off", {"messages": _image("https://example.com/a.png"), "policy": {"budget": 10}},
     ["body", "messages", 0, "content", 1]),
    ("too many images", {"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}] + [
        {"type": "image_url", "image_url": {"url": png_data_url()}}] * 3}], "policy": {"budget": 10}},
     ["body", "messages"]),
]


@pytest.mark.parametrize(("body", "loc"), [(b, loc) for _, b, loc in CASES], ids=[c[0] for c in CASES])
def test_bad_bodies_are_422_naming_the_field(
    client: TestClient, tenant_a: TenantKey, dispatcher: RecordingDispatcher, body: dict[str, Any], loc: list[Any]
) -> None:
    response = client.post("/v1/jobs", json=body, headers=tenant_a.headers)
    assert response.status_code == 422, response.text
    issues = response.json()["detail"]
    assert any(issue["loc"][: len(loc)] == loc for issue in issues), issues
    assert all(set(issue) == {"loc", "msg", "type"} for issue in issues)  # the body is never echoed back
    assert dispatcher.calls == []


def test_text_over_the_limit_is_422(client: TestClient, tenant_a: TenantKey) -> None:
    response = client.post("/v1/jobs", json=job_body("x" * 2001), headers=tenant_a.headers)
    assert response.status_code == 422
    assert "over 2000" in response.json()["detail"][0]["msg"]


def test_bad_path_id_is_422(client: TestClient, tenant_a: TenantKey) -> None:
    response = client.get("/v1/jobs/bad%20id", headers=tenant_a.headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "job_id"]


def test_oversize_image_is_413_with_a_message(client: TestClient, tenant_a: TenantKey) -> None:
    url = png_data_url(noise_bytes=MAX_IMAGE_BYTES + 4096)
    response = client.post("/v1/jobs", json={"messages": _image(url), "policy": {"budget": 10}},
                           headers=tenant_a.headers)
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["code"] == "payload_too_large"
    assert f"{MAX_IMAGE_BYTES} bytes" in body["detail"]
    assert body["loc"] == ["body", "messages", 0, "content", 1]


def test_body_over_the_overall_cap_is_413_before_parsing(
    client: TestClient, tenant_a: TenantKey, api_settings: Settings
) -> None:
    cap = max_body_bytes(api_settings)
    payload = b'{"messages": "' + b"x" * cap + b'"}'
    declared = client.post("/v1/jobs", content=payload, headers={**tenant_a.headers,
                                                                 "Content-Type": "application/json"})
    assert declared.status_code == 413
    assert declared.json()["code"] == "payload_too_large"

    def chunks():  # no Content-Length: counted while it streams in
        for i in range(0, len(payload), 65536):
            yield payload[i : i + 65536]

    streamed = client.post("/v1/jobs", content=chunks(), headers={**tenant_a.headers,
                                                                  "Content-Type": "application/json"})
    assert streamed.status_code == 413


def test_a_chunked_body_under_the_cap_still_works(client: TestClient, tenant_a: TenantKey) -> None:
    import json

    payload = json.dumps(job_body()).encode()
    response = client.post("/v1/jobs", content=iter([payload[:10], payload[10:]]),
                           headers={**tenant_a.headers, "Content-Type": "application/json"})
    assert response.status_code == 202, response.text


def test_malformed_json_is_422(client: TestClient, tenant_a: TenantKey) -> None:
    response = client.post("/v1/jobs", content=b'{"messages": [', headers={**tenant_a.headers,
                                                                          "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"


def test_policy_model_matches_the_engine_policy() -> None:
    """The API's policy schema must not drift from ``Policy``: same fields, same defaults."""
    engine_defaults = {f.name: f.default for f in fields(Policy)}
    assert set(PolicyIn.model_fields) == set(engine_defaults)
    for name, info in PolicyIn.model_fields.items():
        if name != "budget":  # required in the API: a client states what it is willing to spend
            assert info.default == engine_defaults[name], name


def test_remote_images_when_allowed_never_reach_private_addresses(
    pg_clean_engine: object, pg_url: str, broker_url: str, tenant_a: TenantKey
) -> None:
    """With remote images on, a URL that resolves to loopback (SSRF) is refused before any request is made."""
    from api.app import create_app
    from tests.api.conftest import make_settings

    app = create_app(make_settings(pg_url, broker_url, allow_remote_images=True), dispatcher=RecordingDispatcher())
    with TestClient(app) as client:
        response = client.post("/v1/jobs", json={"messages": _image("http://127.0.0.1:9/cat.png"),
                                                 "policy": {"budget": 10}}, headers=tenant_a.headers)
    assert response.status_code == 422
    issue = response.json()["detail"][0]
    assert issue["loc"] == ["body", "messages", 0, "content", 1]
    assert "non-public address" in issue["msg"]
