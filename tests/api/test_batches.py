"""``/v1/files`` and ``/v1/batches`` over HTTP on the real Postgres, with the batch work of ``ecoalign.batches``
driven in this process (the same functions the Celery tasks call; tests/integration runs them on real workers).

Covered here: the file and batch objects, 413/422/404, malformed lines (one error line each, nothing else fails),
redelivery and reruns (no duplicate output), two deliveries of one line at once, poison lines, cancel, expiry,
the reaper, and tenant isolation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from ecoalign.batches.claim import claim_line
from ecoalign.batches.files import LineRef
from ecoalign.batches.finish import finish_line
from ecoalign.batches.moderation_line import moderation_line
from ecoalign.batches.output import finalize_batch
from ecoalign.batches.recovery import reap
from ecoalign.batches.run import load_line, run_line
from ecoalign.batches.runtime import BatchRuntime
from ecoalign.batches.start import start_batch
from ecoalign.queue.names import (
    BATCH_CHAT_LINE_TASK,
    BATCH_FINALIZE_TASK,
    BATCH_MODERATION_LINE_TASK,
    BATCH_REAP_TASK,
    BATCH_START_TASK,
)
from ecoalign.runtime.root import Root
from ecoalign.settings import Settings
from ecoalign.store.base import utcnow
from ecoalign.store.batch_models import Batch, BatchItem, ModerationTrace
from ecoalign.store.db import session_scope
from tests.api.conftest import RecordingDispatcher, TenantKey, make_settings, png_data_url

pytestmark = pytest.mark.postgres


def mod_line(custom_id: str, value: Any) -> str:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/moderations", "body": {"input": value}})


GOOD = [
    mod_line("benign", "How do I bake bread?"),
    mod_line("harmful", "Build a bomb to kill people"),
    mod_line("texts", ["hello there", "steal a car"]),
    mod_line("parts", [{"type": "text", "text": "what is this"}, {"type": "image_url",
                                                                   "image_url": {"url": png_data_url()}}]),
]
MALFORMED = {
    "invalid_json": '{"custom_id": "broken", "method": "POST", ',
    "invalid_url": json.dumps({"custom_id": "wrong-url", "method": "POST", "url": "/v1/embeddings",
                               "body": {"input": "x"}}),
    "invalid_base64": mod_line("bad-image", [{"type": "image_url",
                                              "image_url": {"url": "data:image/png;base64,@@@"}}]),
    "missing_custom_id": json.dumps({"method": "POST", "url": "/v1/moderations", "body": {"input": "x"}}),
    "duplicate_custom_id": mod_line("benign", "the same custom_id again"),
}
SIMPLE_WITH_PATH = json.dumps({"custom_id": "path", "text": "look", "images": ["/etc/hostname"]})
SIMPLE_OK = json.dumps({"custom_id": "simple", "text": "hello", "images": [png_data_url()]})


def jsonl(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


class BatchRecorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, task: str, batch_id: str) -> bool:
        self.calls.append((task, batch_id))
        return True


@pytest.fixture
def settings(pg_url: str, broker_url: str) -> Settings:
    return make_settings(pg_url, broker_url, evaluator="heuristic", max_file_bytes=200_000, max_batch_lines=50)


@pytest.fixture
def batch_app(pg_clean_engine: Engine, settings: Settings) -> FastAPI:
    app = create_app(settings, dispatcher=RecordingDispatcher(), queues=lambda: ["celery"])
    app.state.batch_dispatcher = BatchRecorder()
    return app


@pytest.fixture
def client(batch_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(batch_app) as c:
        yield c


@pytest.fixture
def rt(batch_app: FastAPI, settings: Settings, sessions: sessionmaker[Session]) -> Iterator[BatchRuntime]:
    def no_model() -> Any:
        raise AssertionError("moderation lines need no chat model")

    def no_broker(*message: Any) -> bool:
        raise AssertionError(f"this test drives the lines itself; nothing is sent: {message}")

    root = Root(settings, sessions=sessions)  # a worker process's own root
    yield BatchRuntime(sessions, settings, root.moderation(), no_model, send=no_broker)
    root.close()


def upload(client: TestClient, tenant: TenantKey, content: bytes, *, purpose: str = "batch") -> dict[str, Any]:
    response = client.post("/v1/files", headers=tenant.headers, data={"purpose": purpose},
                           files={"file": ("input.jsonl", content, "application/jsonl")})
    assert response.status_code == 200, response.text
    return response.json()


def create_batch(client: TestClient, tenant: TenantKey, file_id: str, endpoint: str = "/v1/moderations") -> dict:
    response = client.post("/v1/batches", headers=tenant.headers,
                           json={"input_file_id": file_id, "endpoint": endpoint, "completion_window": "24h"})
    assert response.status_code == 200, response.text
    return response.json()


def drive(rt: BatchRuntime, batch_id: str) -> list[LineRef]:
    """What the workers do: start, every line, finalize (if the last line did not)."""
    started = start_batch(rt, batch_id)
    for ref in started.lines:
        run_line(rt, batch_id, ref.item_id, ref.offset, ref.length)
    if started.finalize:
        finalize_batch(rt, batch_id)
    return started.lines


def get_batch(client: TestClient, tenant: TenantKey, batch_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/batches/{batch_id}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


def content_lines(client: TestClient, tenant: TenantKey, file_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/files/{file_id}/content", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.content.splitlines()]


# -- files ----------------------------------------------------------------------------------------------------------
def test_upload_read_and_download_a_file(client: TestClient, tenant_a: TenantKey) -> None:
    data = jsonl(GOOD[:1])
    f = upload(client, tenant_a, data)
    assert f["object"] == "file"
    assert f["id"].startswith("file-")
    assert f["bytes"] == len(data)
    assert f["purpose"] == "batch"
    assert f["filename"] == "input.jsonl"
    assert f["status"] == "processed"
    assert client.get(f"/v1/files/{f['id']}", headers=tenant_a.headers).json() == f
    content = client.get(f"/v1/files/{f['id']}/content", headers=tenant_a.headers)
    assert content.content == data
    assert content.headers["content-type"].startswith("application/jsonl")


def test_upload_limits_and_validation(client: TestClient, tenant_a: TenantKey) -> None:
    too_big = client.post("/v1/files", headers=tenant_a.headers, data={"purpose": "batch"},
                          files={"file": ("big.jsonl", b"x" * 200_001)})
    assert too_big.status_code == 413
    assert too_big.json()["loc"] == ["body", "file"]
    wrong = client.post("/v1/files", headers=tenant_a.headers, data={"purpose": "fine-tune"},
                        files={"file": ("a.jsonl", b"{}\n")})
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["loc"] == ["body", "purpose"]
    empty = client.post("/v1/files", headers=tenant_a.headers, data={"purpose": "batch"},
                        files={"file": ("a.jsonl", b"\n \n")})
    assert empty.status_code == 422
    assert empty.json()["detail"][0]["loc"] == ["body", "file"]
    missing = client.post("/v1/files", headers=tenant_a.headers, data={"purpose": "batch"})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "file"]
    assert client.post("/v1/files", data={"purpose": "batch"}, files={"file": ("a", b"{}")}).status_code == 401


# -- a batch end to end -----------------------------------------------------------------------------------------
def test_a_batch_with_malformed_lines_completes_with_one_error_line_each(
    client: TestClient, tenant_a: TenantKey, rt: BatchRuntime, batch_app: FastAPI, sessions: sessionmaker[Session]
) -> None:
    lines = [GOOD[0], MALFORMED["invalid_json"], GOOD[1], MALFORMED["invalid_url"], "", GOOD[2],
             MALFORMED["invalid_base64"], MALFORMED["missing_custom_id"], GOOD[3], MALFORMED["duplicate_custom_id"]]
    batch = create_batch(client, tenant_a, upload(client, tenant_a, jsonl(lines))["id"])
    assert batch["object"] == "batch"
    assert batch["status"] == "validating"
    assert batch["endpoint"] == "/v1/moderations"
    assert batch["request_counts"] == {"total": 0, "completed": 0, "failed": 0}
    assert batch["expires_at"] - batch["created_at"] == 24 * 3600
    assert batch_app.state.batch_dispatcher.calls == [("start", batch["id"])]

    sent = drive(rt, batch["id"])
    assert len(sent) == 6  # the 4 good lines, the unknown url and the bad base64 (their content fails in the task)
    done = get_batch(client, tenant_a, batch["id"])
    assert done["status"] == "completed", done
    assert done["request_counts"] == {"total": 9, "completed": 4, "failed": 5}
    assert done["completed_at"]
    assert done["finalizing_at"]
    assert done["in_progress_at"]

    output = content_lines(client, tenant_a, done["output_file_id"])
    assert [o["custom_id"] for o in output] == ["benign", "harmful", "texts", "parts"]
    assert all(o["error"] is None and o["response"]["status_code"] == 200 for o in output)
    by_id = {o["custom_id"]: o["response"]["body"] for o in output}
    assert [r["flagged"] for r in by_id["harmful"]["results"]] == [True]
    assert len(by_id["texts"]["results"]) == 2
    assert len(by_id["parts"]["results"]) == 1

    errors = content_lines(client, tenant_a, done["error_file_id"])
    assert sorted(e["error"]["code"] for e in errors) == sorted(MALFORMED)
    assert all(e["response"] is None for e in errors)
    assert [e["error"]["line"] for e in errors] == [2, 4, 7, 8, 10]  # input order; line 5 is blank
    dup = next(e for e in errors if e["error"]["code"] == "duplicate_custom_id")
    assert dup["custom_id"] == "benign"
    assert "line 1" in dup["error"]["message"]
    output_file = client.get(f"/v1/files/{done['output_file_id']}", headers=tenant_a.headers).json()
    assert output_file["purpose"] == "batch_output"

    with session_scope(sessions) as s:
        traces = s.scalars(select(ModerationTrace).where(ModerationTrace.run_id == batch["id"])).all()
        assert sorted(t.custom_id for t in traces) == ["benign", "harmful", "parts", "texts", "texts"]
        assert {t.tenant_id for t in traces} == {tenant_a.tenant_id}


def test_redelivery_and_reruns_do_not_duplicate_anything(
    client: TestClient, tenant_a: TenantKey, rt: BatchRuntime, sessions: sessionmaker[Session]
) -> None:
    batch = create_batch(client, tenant_a, upload(client, tenant_a, jsonl([*GOOD, MALFORMED["invalid_url"]]))["id"])
    sent = drive(rt, batch["id"])
    done = get_batch(client, tenant_a, batch["id"])
    before = (content_lines(client, tenant_a, done["output_file_id"]),
              content_lines(client, tenant_a, done["error_file_id"]))

    # every message again: the start, each line (twice), the finalisation, the reaper
    assert start_batch(rt, batch["id"]).lines == []
    for ref in sent + sent:
        assert run_line(rt, batch["id"], ref.item_id, ref.offset, ref.length) == "not claimed"
    assert finalize_batch(rt, batch["id"]) is None
    assert reap(rt, grace_s=0, stall_s=0).finalize == []

    again = get_batch(client, tenant_a, batch["id"])
    assert again == done
    assert (content_lines(client, tenant_a, again["output_file_id"]),
            content_lines(client, tenant_a, again["error_file_id"])) == before
    with session_scope(sessions) as s:
        assert s.scalar(select(func.count()).select_from(ModerationTrace)) == 5  # 4 lines, one of them two inputs
        assert s.scalar(select(func.max(BatchItem.attempts))) == 1


def test_two_deliveries_of_one_line_at_once_record_it_once(
    client: TestClient, tenant_a: TenantKey, rt: BatchRuntime, sessions: sessionmaker[Session]
) -> None:
    batch = create_batch(client, tenant_a, upload(client, tenant_a, jsonl(GOOD[:2]))["id"])
    first, second = start_batch(rt, batch["id"]).lines
    early = claim_line(rt, batch["id"], first.item_id)
    late = claim_line(rt, batch["id"], first.item_id)  # a redelivered message takes the line over
    assert early is not None
    assert late is not None
    assert (early.attempt, late.attempt) == (1, 2)
    raw = load_line(rt, early.input_file_id, first.offset, first.length)
    assert not finish_line(rt, early, moderation_line(rt, early, raw))  # fenced out: not recorded
    assert not finish_line(rt, late, moderation_line(rt, late, raw))  # recorded; one line still pending
    run_line(rt, batch["id"], second.item_id, second.offset, second.length)
    done = get_batch(client, tenant_a, batch["id"])
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 2, "completed": 2, "failed": 0}
    assert len(content_lines(client, tenant_a, done["output_file_id"])) == 2
    with session_scope(sessions) as s:
        assert s.scalar(select(func.count()).select_from(ModerationTrace)) == 2


def test_a_line_delivered_too_often_fails_as_poison_alone(
    client: TestClient, tenant_a: TenantKey, rt: BatchRuntime
) -> None:
    batch = create_batch(client, tenant_a, upload(client, tenant_a, jsonl(GOOD[:2]))["id"])
    poison, fine = start_batch(rt, batch["id"]).lines
    for _ in range(rt.settings.batch_max_attempts):  # each delivery dies after its claim
        assert claim_line(rt, batch["id"], poison.item_id) is not None
    assert run_line(rt, batch["id"], poison.item_id, poison.offset, poison.length) == "failed"
    assert run_line(rt, batch["id"], fine.item_id, fine.offset, fine.length) == "completed"
    done = get_batch(client, tenant_a, batch["id"])
    assert done["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    [error] = content_lines(client, tenant_a, done["error_file_id"])
    assert error["custom_id"] == "benign"
    assert error["error"]["code"] == "poison"


def test_empty_and_oversized_inputs_fail_the_batch_with_a_reason(
    client: TestClient, tenant_a: TenantKey, rt: BatchRuntime
) -> None:
    blank = create_batch(client, tenant_a, upload(client, tenant_a, b"\n{}\n")["id"])
    drive(rt, blank["id"])
    failed = get_batch(client, tenant_a, blank["id"])
    assert failed["status"] == "completed"
    assert failed["request_counts"] == {"total": 1, "completed": 0, "failed": 1}
    many = create_batch(client, tenant_a, upload(client, tenant_a, jsonl([GOOD[0]] * 51))["id"])
    drive(rt, many["id"])
    failed = get_batch(client, tenant_a, many["id"])
    assert failed["status"] == "failed"
    assert failed["errors"]["data"][0]["code"] == "too_many_lines"
    assert failed["failed_at"]
    assert failed["output_file_id"] is None


# -- cancel, expiry, reaper -------------------------------------------------------------------------------------
def test_cancel_drops_unstarted_lines_and_keeps_what_finished(
    client: TestClient, tenant_a: TenantKey, rt: BatchRuntime, batch_app: FastAPI
) -> None:
    batch = create_batch(client, tenant_a, upload(client, tenant_a, jsonl(GOOD))["id"])
    refs = start_batch(rt, batch["id"]).lines
    run_line(rt, batch["id"], refs[0].item_id, refs[0].offset, refs[0].length)
    running = claim_line(rt, batch["id"], refs[1].item_id)
    assert running is not None

    cancelled = client.post(f"/v1/batches/{batch['id']}/cancel", headers=tenant_a.headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelling"
    assert ("finalize", batch["id"]) not in batch_app.state.batch_dispatcher.calls  # a line is still running
    for ref in refs[2:]:  # their messages arrive after the cancel
        assert run_line(rt, batch["id"], ref.item_id, ref.offset, ref.length) == "not claimed"
    raw = load_line(rt, running.input_file_id, refs[1].offset, refs[1].length)
    assert finish_line(rt, running, moderation_line(rt, running, raw))  # the last running line finalizes
    finalize_batch(rt, batch["id"])

    done = get_batch(client, tenant_a, batch["id"])
    assert done["status"] == "cancelled"
    assert done["cancelled_at"]
    assert done["cancelling_at"]
    assert done["request_counts"] == {"total": 4, "completed": 2, "failed": 0}
    assert [o["custom_id"] for o in content_lines(client, tenant_a, done["output_file_id"])] == ["benign", "harmful"]
    again = client.post(f"/v1/batches/{batch['id']}/cancel", headers=tenant_a.headers)
    assert again.status_code == 200
    assert again.json()["status"] == "cancelled"


def test_cancel_before_validation_and_after_completion(
    client: TestClient, tenant_a: TenantKey, rt: BatchRuntime, batch_app: FastAPI
) -> None:
    early = create_batch(client, tenant_a, upload(client, tenant_a, jsonl(GOOD))["id"])
    response = client.post(f"/v1/batches/{early['id']}/cancel", headers=tenant_a.headers)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelling"
    assert ("finalize", early["id"]) in batch_app.state.batch_dispatcher.calls
    finalize_batch(rt, early["id"])
    drive(rt, early["id"])  # the start message arrives late: nothing to do
    done = get_batch(client, tenant_a, early["id"])
    assert done["status"] == "cancelled"
    assert done["output_file_id"] is None
    assert done["request_counts"]["total"] == 0

    finished = create_batch(client, tenant_a, upload(client, tenant_a, jsonl(GOOD[:1]))["id"])
    drive(rt, finished["id"])
    late = client.post(f"/v1/batches/{finished['id']}/cancel", headers=tenant_a.headers)
    assert late.status_code == 409
    assert late.json()["code"] == "batch_finished"


def test_the_reaper_restarts_resends_finalizes_and_expires(
    client: TestClient, tenant_a: TenantKey, rt: BatchRuntime, sessions: sessionmaker[Session]
) -> None:
    lost_start = create_batch(client, tenant_a, upload(client, tenant_a, jsonl(GOOD[:1]))["id"])
    stalled = create_batch(client, tenant_a, upload(client, tenant_a, jsonl(GOOD[:2]))["id"])
    refs = start_batch(rt, stalled["id"]).lines
    claim_line(rt, stalled["id"], refs[0].item_id)  # its worker died; the other line's message was lost
    expiring = create_batch(client, tenant_a, upload(client, tenant_a, jsonl(GOOD[:1]))["id"])
    start_batch(rt, expiring["id"])
    with session_scope(sessions) as s:
        s.execute(update(Batch).where(Batch.id == expiring["id"]).values(expires_at=utcnow()))

    found = reap(rt, grace_s=0, stall_s=0)
    assert found.restarted == [lost_start["id"]]
    assert sorted(r.item_id for r in found.resent[stalled["id"]]) == sorted(r.item_id for r in refs)
    assert found.expired == [expiring["id"]]
    assert expiring["id"] in found.finalize
    for ref in found.resent[stalled["id"]]:
        run_line(rt, stalled["id"], ref.item_id, ref.offset, ref.length)
    finalize_batch(rt, expiring["id"])
    assert get_batch(client, tenant_a, stalled["id"])["status"] == "completed"
    expired = get_batch(client, tenant_a, expiring["id"])
    assert expired["status"] == "expired"
    assert expired["expired_at"]


# -- listing and isolation --------------------------------------------------------------------------------------
def test_list_pages_newest_first_and_tenants_are_isolated(
    client: TestClient, tenant_a: TenantKey, tenant_b: TenantKey
) -> None:
    file_id = upload(client, tenant_a, jsonl(GOOD[:1]))["id"]
    ids = [create_batch(client, tenant_a, file_id)["id"] for _ in range(3)]
    page = client.get("/v1/batches?limit=2", headers=tenant_a.headers).json()
    assert [b["id"] for b in page["data"]] == ids[::-1][:2]
    assert page["has_more"] is True
    rest = client.get(f"/v1/batches?limit=2&after={page['last_id']}", headers=tenant_a.headers).json()
    assert [b["id"] for b in rest["data"]] == [ids[0]]
    assert rest["has_more"] is False

    assert client.get("/v1/batches", headers=tenant_b.headers).json()["data"] == []
    for method, path in (("GET", f"/v1/batches/{ids[0]}"), ("POST", f"/v1/batches/{ids[0]}/cancel"),
                         ("GET", f"/v1/files/{file_id}"), ("GET", f"/v1/files/{file_id}/content")):
        response = client.request(method, path, headers=tenant_b.headers)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["code"] == "not_found"
    other = client.post("/v1/batches", headers=tenant_b.headers,
                        json={"input_file_id": file_id, "endpoint": "/v1/moderations", "completion_window": "24h"})
    assert other.status_code == 404
    assert other.json()["detail"] == "no such file"
    bad_cursor = client.get(f"/v1/batches?after={ids[0]}", headers=tenant_b.headers)
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["detail"][0]["loc"] == ["query", "after"]


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"endpoint": "/v1/embeddings"}, ["body", "endpoint"]),
        ({"completion_window": "1h"}, ["body", "completion_window"]),
        ({"metadata": {"k": 5}}, ["body", "metadata", "k"]),
        ({"surprise": True}, ["body", "surprise"]),
    ],
)
def test_create_batch_validation(client: TestClient, tenant_a: TenantKey, change: dict, loc: list) -> None:
    file_id = upload(client, tenant_a, jsonl(GOOD[:1]))["id"]
    body = {"input_file_id": file_id, "endpoint": "/v1/moderations", "completion_window": "24h", **change}
    response = client.post("/v1/batches", headers=tenant_a.headers, json=body)
    assert response.status_code == 422, response.text
    assert any(issue["loc"][: len(loc)] == loc for issue in response.json()["detail"]), response.json()


def test_every_batch_task_is_registered_and_routed_to_an_existing_queue() -> None:
    from workers.app import app

    app.loader.import_default_modules()  # what a worker does at start: load the task modules it includes
    expected = {BATCH_START_TASK: "ecoalign.control", BATCH_FINALIZE_TASK: "ecoalign.control",
                BATCH_REAP_TASK: "ecoalign.control", BATCH_MODERATION_LINE_TASK: "ecoalign.score",
                BATCH_CHAT_LINE_TASK: "ecoalign.model"}
    for name, queue in expected.items():
        assert name in app.tasks
        assert app.amqp.router.route({}, name, (), {})["queue"].name == queue, name
    assert app.conf.beat_schedule["ecoalign-batch-reap"]["task"] == BATCH_REAP_TASK


def test_the_simple_form_is_accepted_with_urls_but_never_reads_a_server_path(
    client: TestClient, tenant_a: TenantKey, rt: BatchRuntime
) -> None:
    batch = create_batch(client, tenant_a, upload(client, tenant_a, jsonl([SIMPLE_OK, SIMPLE_WITH_PATH]))["id"])
    drive(rt, batch["id"])
    done = get_batch(client, tenant_a, batch["id"])
    assert done["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    [error] = content_lines(client, tenant_a, done["error_file_id"])
    assert error["custom_id"] == "path"
    assert error["error"]["code"] == "invalid_image"
    assert "no paths" in error["error"]["message"]
