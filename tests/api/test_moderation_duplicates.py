"""Duplicates through ``POST /v1/moderations`` on the real Postgres: a copy costs zero tokens (no judge call) and
points to the original trace; re-encoded and resized images are caught, another picture is not; another tenant and
another policy (here: another item budget) decide again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.store.batch_models import ModerationTrace
from ecoalign.store.db import session_scope
from ecoalign.testing.emulator import EmulatorServer
from tests.api.conftest import TenantKey
from tests.moderation.dedup_images import as_jpeg, data_url, encoded, picture, resized
from tests.reviews.conftest import VERDICT, review_app

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def judge() -> Iterator[EmulatorServer]:
    with EmulatorServer(rules=[(r"lock", VERDICT)], model="judge-emu") as emu:
        yield emu


@pytest.fixture
def client(pg_clean_engine: Engine, pg_url: str, broker_url: str, judge: EmulatorServer) -> Iterator[TestClient]:
    with TestClient(review_app(pg_url, broker_url, judge, max_image_bytes=512 * 1024)) as c:
        yield c


def moderate(client: TestClient, tenant: TenantKey, value: Any, **ext: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"input": value, **({"ecoalign": ext} if ext else {})}
    response = client.post("/v1/moderations", json=body, headers=tenant.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["results"][0]
    return result


def parts(text: str, image: bytes) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": data_url(image)}}]


def test_a_duplicate_costs_zero_tokens_and_points_to_the_original_trace(
    client: TestClient, tenant_a: TenantKey, tenant_b: TenantKey, judge: EmulatorServer,
    sessions: sessionmaker[Session],
) -> None:
    before = judge.stats["chat_requests"]
    first = moderate(client, tenant_a, "How do I pick a lock?")
    assert first["ecoalign"]["decision"] == "judge"
    assert first["ecoalign"]["tokens"] > 0
    copy = moderate(client, tenant_a, "How do I  pick a lock?")
    assert copy["ecoalign"]["tokens"] == 0
    assert copy["ecoalign"]["decision"] == "duplicate"
    assert copy["ecoalign"]["duplicate_of"] == first["ecoalign"]["trace_id"]
    assert (copy["flagged"], copy["categories"], copy["category_scores"]) == (
        first["flagged"], first["categories"], first["category_scores"])
    assert judge.stats["chat_requests"] == before + 1  # the copy made no judge call

    other_tenant = moderate(client, tenant_b, "How do I pick a lock?")
    other_policy = moderate(client, tenant_a, "How do I pick a lock?", item_budget=1500)
    assert other_tenant["ecoalign"]["decision"] == other_policy["ecoalign"]["decision"] == "judge"
    assert judge.stats["chat_requests"] == before + 3
    with session_scope(sessions) as s:
        trace = s.scalars(select(ModerationTrace).where(
            ModerationTrace.trace_id == copy["ecoalign"]["trace_id"])).one()
        assert trace.tokens == 0
        assert trace.trace["duplicate_of"]["trace_id"] == first["ecoalign"]["trace_id"]


def test_re_encoded_and_resized_images_are_caught_and_a_different_image_is_not(
    client: TestClient, tenant_a: TenantKey, judge: EmulatorServer,
) -> None:
    original = picture(21)
    before = judge.stats["chat_requests"]
    first = moderate(client, tenant_a, parts("is this a lock?", encoded(original)))
    assert first["ecoalign"]["decision"] == "judge"
    for copy in (as_jpeg(original), resized(original)):
        near = moderate(client, tenant_a, parts("is this a lock?", copy))
        assert near["ecoalign"]["tokens"] == 0
        assert near["ecoalign"]["duplicate_of"] == first["ecoalign"]["trace_id"]
        assert near["ecoalign"]["duplicate"]["match"] == "near"
    different = moderate(client, tenant_a, parts("is this a lock?", encoded(picture(22))))
    assert different["ecoalign"]["decision"] == "judge"
    assert different["ecoalign"]["tokens"] > 0
    assert judge.stats["chat_requests"] == before + 2
