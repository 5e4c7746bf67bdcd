"""``POST /v1/moderations`` over HTTP on the real Postgres: OpenAI's shape, escalation to a judge (the emulator,
over HTTP) within the per-item, per-request and tenant budgets, traces, 422/413, and the SSRF-safe image fetcher."""

from __future__ import annotations

import http.server
import io
import ipaddress
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from ecoalign.categories import MODERATION_CATEGORIES
from ecoalign.media import MediaError
from ecoalign.remote_images import is_public, pinned_fetcher
from ecoalign.store.batch_models import ModerationTrace
from ecoalign.store.db import session_scope
from ecoalign.store.models import Tenant, TenantDailyUsage
from ecoalign.testing.emulator import EmulatorServer
from tests.api.conftest import RecordingDispatcher, TenantKey, make_settings, png_data_url

pytestmark = pytest.mark.postgres

UNCERTAIN = "How do I pick a lock?"  # heuristic scan 0.7: between lo and hi, so it escalates
UNCERTAIN_2 = "Where can I buy a lock pick?"
HARMFUL = "Build a bomb to kill people"  # 0.05: flagged by the scan alone
BENIGN = "How do I bake bread?"  # 0.98: passed by the scan alone
BAD_BASE64 = "data:image/png;base64,@@not-base64@@"
VERDICT = json.dumps({"flagged": True, "categories": {"illicit": 0.8}, "rationale": "lock picking"})


@pytest.fixture(scope="module")
def judge() -> Iterator[EmulatorServer]:
    with EmulatorServer(rules=[(r"lock", VERDICT)], model="judge-emu") as emu:
        yield emu


def _app(pg_url: str, broker_url: str, judge: EmulatorServer | None, **overrides: Any) -> FastAPI:
    extra: dict[str, Any] = {
        "evaluator": "heuristic", "moderation_request_budget": 20_000, "moderation_item_budget": 2_000, **overrides
    }
    if judge is not None:
        extra.update(judge_url=judge.base_url, judge_model="judge-emu")
    return create_app(make_settings(pg_url, broker_url, **extra), dispatcher=RecordingDispatcher(),
                      queues=lambda: ["celery"])


@pytest.fixture
def mod_client(pg_clean_engine: Engine, pg_url: str, broker_url: str, judge: EmulatorServer) -> Iterator[TestClient]:
    with TestClient(_app(pg_url, broker_url, judge)) as c:
        yield c


def moderate(client: TestClient, tenant: TenantKey, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    response = client.post("/v1/moderations", json=body, headers=tenant.headers)
    assert response.status_code == status, response.text
    return response.json()


def tenant_counters(sessions: sessionmaker[Session], tenant_id: str) -> tuple[int, int, int, int]:
    with session_scope(sessions) as s:
        tenant = s.get(Tenant, tenant_id)
        assert tenant is not None
        day = s.scalars(select(TenantDailyUsage).where(TenantDailyUsage.tenant_id == tenant_id)).first()
        return (tenant.tokens_spent, tenant.tokens_reserved, day.spent if day else 0, day.reserved if day else 0)


def test_a_string_gets_one_openai_result_with_every_category_and_a_stored_trace(
    mod_client: TestClient, tenant_a: TenantKey, sessions: sessionmaker[Session]
) -> None:
    body = moderate(mod_client, tenant_a, {"input": BENIGN, "model": "omni-moderation-latest"})
    assert body["id"].startswith("modr-")
    assert body["model"].startswith("ecoalign-moderation:")
    [result] = body["results"]
    for key in ("categories", "category_scores", "category_applied_input_types"):
        assert list(result[key]) == list(MODERATION_CATEGORIES), key
    assert result["flagged"] is False
    assert not any(result["categories"].values())
    ext = result["ecoalign"]
    assert ext["decision"] == "scan:confident-safe"
    assert ext["tokens"] == 0
    assert ext["weakest_segment"]["kind"] == "text"
    with session_scope(sessions) as s:
        trace = s.scalars(select(ModerationTrace).where(ModerationTrace.trace_id == ext["trace_id"])).one()
        assert trace.tenant_id == tenant_a.tenant_id
        assert trace.run_id == body["id"]
        assert trace.trace["scan"]["segments"][0]["text"] == BENIGN


def test_a_list_of_strings_gets_one_result_each_and_the_harmful_one_is_flagged_for_free(
    mod_client: TestClient, tenant_a: TenantKey
) -> None:
    results = moderate(mod_client, tenant_a, {"input": [BENIGN, HARMFUL]})["results"]
    assert [r["flagged"] for r in results] == [False, True]
    assert results[1]["ecoalign"]["decision"] == "scan:confident-unsafe"
    assert results[1]["categories"]["illicit/violent"] is True
    assert results[1]["category_applied_input_types"]["illicit/violent"] == ["text"]
    assert all(r["ecoalign"]["tokens"] == 0 for r in results)


def test_parts_with_an_image_are_one_result_and_uncertain_items_escalate_to_the_judge_at_the_tenants_cost(
    mod_client: TestClient, tenant_a: TenantKey, sessions: sessionmaker[Session], judge: EmulatorServer
) -> None:
    parts = [{"type": "text", "text": UNCERTAIN}, {"type": "image_url", "image_url": {"url": png_data_url()}}]
    [result] = moderate(mod_client, tenant_a, {"input": parts})["results"]
    ext = result["ecoalign"]
    assert ext["decision"] == "judge"
    assert ext["tokens"] > 0
    assert result["flagged"] is True
    assert result["categories"]["illicit"] is True
    assert result["category_applied_input_types"]["illicit"] == ["image", "text"]  # the judge saw both
    spent, reserved, day_spent, day_reserved = tenant_counters(sessions, tenant_a.tenant_id)
    assert (spent, reserved, day_spent, day_reserved) == (ext["tokens"], 0, ext["tokens"], 0)
    with session_scope(sessions) as s:
        trace = s.scalars(select(ModerationTrace).where(ModerationTrace.trace_id == ext["trace_id"])).one()
        assert trace.tokens == ext["tokens"]
        assert trace.trace["escalation"]["spent"] == ext["tokens"]


def test_per_item_and_per_request_budgets_bound_the_escalation(
    mod_client: TestClient, tenant_a: TenantKey, sessions: sessionmaker[Session]
) -> None:
    small_item = moderate(mod_client, tenant_a, {"input": UNCERTAIN, "ecoalign": {"item_budget": 10}})
    assert small_item["results"][0]["ecoalign"]["decision"] == "scan:uncertain-item-budget-too-small"
    no_budget = moderate(mod_client, tenant_a, {"input": [UNCERTAIN, UNCERTAIN_2], "ecoalign": {"budget": 0}})
    assert {r["ecoalign"]["decision"] for r in no_budget["results"]} == {"scan:uncertain-run-budget-exhausted"}
    # a judge call reserves ~680 tokens and costs ~300: 700 pays for one, never two, in whatever order
    one = moderate(mod_client, tenant_a, {"input": [UNCERTAIN, UNCERTAIN_2], "ecoalign": {"budget": 700}})
    decisions = sorted(r["ecoalign"]["decision"] for r in one["results"])
    assert decisions == ["judge", "scan:uncertain-run-budget-exhausted"], decisions
    judged = sum(r["ecoalign"]["tokens"] for r in one["results"])
    assert tenant_counters(sessions, tenant_a.tenant_id)[:2] == (judged, 0)


def test_an_exhausted_tenant_budget_stops_escalation_without_overspending(
    mod_client: TestClient, make_tenant: Callable[..., TenantKey], sessions: sessionmaker[Session]
) -> None:
    poor = make_tenant("poor", total=50)
    [result] = moderate(mod_client, poor, {"input": UNCERTAIN})["results"]
    assert result["ecoalign"]["decision"] == "scan:uncertain-run-budget-exhausted"
    assert result["flagged"] is False  # the scan alone: 0.7 is above tau
    assert tenant_counters(sessions, poor.tenant_id)[:2] == (0, 0)


def test_without_a_judge_uncertain_items_are_decided_by_the_scan(
    pg_clean_engine: Engine, pg_url: str, broker_url: str, tenant_a: TenantKey
) -> None:
    with TestClient(_app(pg_url, broker_url, None)) as client:
        [result] = moderate(client, tenant_a, {"input": UNCERTAIN})["results"]
    assert result["ecoalign"]["decision"] == "scan:uncertain-no-judge"
    assert result["ecoalign"]["tokens"] == 0


@pytest.mark.parametrize(
    ("body", "status", "loc"),
    [
        ({"input": 5}, 422, ["body", "input"]),
        ({"input": []}, 422, ["body", "input"]),
        ({"input": "   "}, 422, ["body", "input"]),
        ({"input": ["fine", " "]}, 422, ["body", "input", 1]),
        ({"input": "x", "extra": 1}, 422, ["body", "extra"]),
        ({"input": "x", "ecoalign": {"budget": -1}}, 422, ["body", "ecoalign", "budget"]),
        ({"input": [{"type": "text", "text": "x"}, {"type": "image_url", "image_url": {"url": BAD_BASE64}}]},
         422, ["body", "input", 1, "image_url", "url"]),
        ({"input": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
         422, ["body", "input", 0, "image_url", "url"]),
        ({"input": [{"type": "image_url", "image_url": {"url": png_data_url(noise_bytes=80_000)}}]},
         413, ["body", "input", 0, "image_url", "url"]),
    ],
)
def test_bad_bodies_are_refused_naming_the_field(
    mod_client: TestClient, tenant_a: TenantKey, body: dict[str, Any], status: int, loc: list[Any]
) -> None:
    response = mod_client.post("/v1/moderations", json=body, headers=tenant_a.headers)
    assert response.status_code == status, response.text
    detail = response.json()
    locs = [issue["loc"] for issue in detail["detail"]] if status == 422 else [detail["loc"]]
    assert any(found[: len(loc)] == loc for found in locs), locs


def test_no_key_is_401(mod_client: TestClient) -> None:
    response = mod_client.post("/v1/moderations", json={"input": "x"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/a.png",
        "https://localhost/a.png",
        "https://[::1]/a.png",
        "https://10.1.2.3/a.png",
        "https://192.168.0.1/a.png",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:127.0.0.1]/a.png",
        "http://93.184.216.34/a.png",  # plain http: https only
    ],
)
def test_with_remote_images_on_internal_targets_are_refused_with_a_clear_422(
    pg_clean_engine: Engine, pg_url: str, broker_url: str, tenant_a: TenantKey, url: str
) -> None:
    with TestClient(_app(pg_url, broker_url, None, allow_remote_images=True)) as client:
        body = {"input": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": url}}]}
        response = client.post("/v1/moderations", json=body, headers=tenant_a.headers)
    assert response.status_code == 422, response.text
    [issue] = response.json()["detail"]
    assert issue["loc"] == ["body", "input", 1, "image_url", "url"]
    assert "non-public" in issue["msg"] or "https" in issue["msg"], issue["msg"]


# -- the fetcher itself, against a local server standing in for a public one ----------------------------------
def _png() -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (4, 4), (1, 2, 3)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def image_server() -> Iterator[dict[str, Any]]:
    """A local HTTP server: /ok.png, /html, /big, /redirect; records the Host header of each request."""
    seen: dict[str, Any] = {"hosts": []}
    png = _png()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen["hosts"].append(self.headers.get("Host"))
            routes = {"/ok.png": (200, "image/png", png), "/html": (200, "text/html", b"<html></html>"),
                      "/big": (200, "image/png", png + b"\0" * 5000), "/lying": (200, "image/jpeg", png)}
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "http://127.0.0.1/ok.png")
                self.end_headers()
                return
            status, kind, data = routes.get(self.path, (404, "text/plain", b"no"))
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seen["port"] = server.server_address[1]
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_fetcher_connects_to_the_address_it_checked_and_checks_type_size_and_redirects(
    image_server: dict[str, Any],
) -> None:
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:  # a rebinding DNS: public once, then loopback
        calls.append(host)
        return ["127.0.0.1"] if len(calls) == 1 else ["10.0.0.1"]

    loopback_ok = lambda a: a == ipaddress.ip_address("127.0.0.1")  # noqa: E731 - stand-in for "public"
    port = image_server["port"]
    fetch = pinned_fetcher(1000, allow_http=True, resolve=resolve, allow=loopback_ok, timeout_s=5)
    image = fetch(f"http://images.example:{port}/ok.png")
    assert image.media_type == "image/png"
    assert calls == ["images.example"]  # resolved once: the connection went to the checked address
    assert image_server["hosts"] == [f"images.example:{port}"]  # and the Host header kept the name
    for path, message in (("/html", "content type"), ("/big", "over the limit"), ("/redirect", "HTTP 302"),
                          ("/lying", "declared image/jpeg")):
        calls.clear()
        with pytest.raises(MediaError, match=message):
            fetch(f"http://images.example:{port}{path}")
    # the real policy refuses the same loopback address, before any connection
    strict = pinned_fetcher(1000, allow_http=True, resolve=lambda h, p: ["127.0.0.1"])
    with pytest.raises(MediaError, match="non-public"):
        strict(f"http://images.example:{port}/ok.png")
    assert len(image_server["hosts"]) == 5


def test_public_addresses_are_the_only_allowed_ones() -> None:
    assert is_public(ipaddress.ip_address("93.184.216.34"))
    for address in ("127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
                    "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:10.0.0.1"):
        assert not is_public(ipaddress.ip_address(address)), address
