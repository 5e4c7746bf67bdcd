"""A 10,000-line Batch file with one line of each kind of damage fails those lines alone (issue 15).

Damage: bad JSON, a wrong url, bad base64 in an image, a missing custom_id, a duplicate custom_id, a line over the
line cap (a line is one request body, so it has the HTTP API's body cap). The file goes in over HTTP; the batch
work runs in this process through the functions the Celery tasks call (the lines in a few threads, as several
worker processes would take them).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from ecoalign.batches.run import run_line
from ecoalign.batches.runtime import BatchRuntime
from ecoalign.batches.start import start_batch
from ecoalign.runtime.requests import max_request_bytes
from ecoalign.runtime.root import Root
from ecoalign.settings import Settings
from ecoalign.store.batch_models import BatchItem
from ecoalign.store.db import session_scope
from tests.api.conftest import RecordingDispatcher, TenantKey, make_settings

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

LINES = 10_000
RUN_ALL_LINES = os.environ.get("ECOALIGN_TEST_BATCH_ALL_LINES") == "1"
RUN_TIME_DAMAGE = {"invalid_url", "invalid_base64"}  # found when the line runs (its body), not at the start
RUN_TIME_DAMAGE_LINES = {2_345, 3_456}


def line(custom_id: str, value: Any) -> str:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/moderations", "body": {"input": value}})


@pytest.fixture
def settings(pg_url: str, broker_url: str) -> Settings:
    return make_settings(pg_url, broker_url, evaluator="heuristic", max_file_bytes=8_000_000, max_batch_lines=LINES)


@pytest.fixture
def client(pg_clean_engine: Engine, settings: Settings) -> Iterator[TestClient]:
    app: FastAPI = create_app(settings, dispatcher=RecordingDispatcher(), queues=lambda: ["celery"])
    app.state.batch_dispatcher = lambda task, batch_id: True
    with TestClient(app) as c:
        yield c


@pytest.fixture
def rt(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[BatchRuntime]:
    def no_broker(*message: Any) -> bool:
        raise AssertionError(f"this test runs the lines itself: {message}")

    root = Root(settings, sessions=sessions)
    yield BatchRuntime(sessions, settings, root.moderation(), lambda: None, send=no_broker)
    root.close()


def damaged_file(settings: Settings) -> tuple[bytes, dict[int, str]]:
    """10,000 lines, good except one of each kind of damage: (file, {line_no: expected error code})."""
    cap = max_request_bytes(settings)
    damage = {
        1_234: ('{"custom_id": "broken", "method": "POST", ', "invalid_json"),
        2_345: (json.dumps({"custom_id": "wrong-url", "method": "POST", "url": "/v1/embeddings",
                            "body": {"input": "x"}}), "invalid_url"),
        3_456: (line("bad-image", [{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]),
                "invalid_base64"),
        4_567: (json.dumps({"method": "POST", "url": "/v1/moderations", "body": {"input": "x"}}),
                "missing_custom_id"),
        5_678: (line("item-7", "the custom_id of line 7 again"), "duplicate_custom_id"),
        6_789: (line("huge", "x" * (cap + 10)), "line_too_large"),
    }
    rows = [damage[n][0] if n in damage else line(f"item-{n}", f"hello number {n}") for n in range(1, LINES + 1)]
    return ("\n".join(rows) + "\n").encode(), {n: code for n, (_, code) in damage.items()}


def test_each_damaged_line_fails_alone(
    client: TestClient, tenant_a: TenantKey, rt: BatchRuntime, settings: Settings
) -> None:
    content, expected = damaged_file(settings)
    uploaded = client.post("/v1/files", headers=tenant_a.headers, data={"purpose": "batch"},
                           files={"file": ("big.jsonl", content, "application/jsonl")})
    assert uploaded.status_code == 200, uploaded.text
    created = client.post("/v1/batches", headers=tenant_a.headers, json={
        "input_file_id": uploaded.json()["id"], "endpoint": "/v1/moderations", "completion_window": "24h"})
    assert created.status_code == 200, created.text
    batch_id = created.json()["id"]

    # The start reads all 10,000 lines: JSON, custom_id (missing, duplicate) and size fail there, and only there.
    started = start_batch(rt, batch_id)
    with session_scope(rt.factory) as s:
        rows = s.execute(select(BatchItem.id, BatchItem.line_no, BatchItem.status, BatchItem.error)
                         .where(BatchItem.batch_id == batch_id)).all()
    assert len(rows) == LINES
    failed_at_start = {r.line_no: r.error["code"] for r in rows if r.status == "failed"}
    assert failed_at_start == {n: c for n, c in expected.items() if c not in RUN_TIME_DAMAGE}
    assert len(started.lines) == LINES - len(failed_at_start)
    line_of = {r.id: r.line_no for r in rows}

    # The lines: every one (ECOALIGN_TEST_BATCH_ALL_LINES=1: 10,000 line tasks, minutes on a loaded 2-core
    # machine), else the damaged ones and every 25th good one, spread over the whole file.
    to_run = [ref for ref in started.lines
              if RUN_ALL_LINES or line_of[ref.item_id] in expected or line_of[ref.item_id] % 25 == 0]
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = dict(zip((line_of[ref.item_id] for ref in to_run),
                            pool.map(lambda ref: run_line(rt, batch_id, ref.item_id, ref.offset, ref.length),
                                     to_run), strict=True))
    assert {n for n, outcome in outcomes.items() if outcome == "failed"} == RUN_TIME_DAMAGE_LINES
    assert sum(outcome == "completed" for outcome in outcomes.values()) == len(to_run) - len(RUN_TIME_DAMAGE_LINES)
    with session_scope(rt.factory) as s:
        errors = s.execute(select(BatchItem.line_no, BatchItem.error).where(
            BatchItem.batch_id == batch_id, BatchItem.line_no.in_(RUN_TIME_DAMAGE_LINES))).all()
    assert {r.line_no: r.error["code"] for r in errors} == {n: expected[n] for n in RUN_TIME_DAMAGE_LINES}
    if not RUN_ALL_LINES:
        return

    done = client.get(f"/v1/batches/{batch_id}", headers=tenant_a.headers).json()
    assert done["status"] == "completed", done
    assert done["request_counts"] == {"total": LINES, "completed": LINES - len(expected), "failed": len(expected)}
    error_file = client.get(f"/v1/files/{done['error_file_id']}/content", headers=tenant_a.headers)
    by_line = {e["error"]["line"]: e["error"]["code"] for e in map(json.loads, error_file.content.splitlines())}
    assert by_line == expected
    output = client.get(f"/v1/files/{done['output_file_id']}/content", headers=tenant_a.headers)
    results = [json.loads(raw) for raw in output.content.splitlines()]
    assert len(results) == LINES - len(expected)
    assert all(r["response"]["status_code"] == 200 and r["error"] is None for r in results)
    assert len({r["custom_id"] for r in results}) == len(results)
