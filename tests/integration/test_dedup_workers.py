"""Duplicates decided once, and review tasks from Batch lines, across real Celery worker processes: a moderation
batch through a real uvicorn server, two worker processes, Postgres, a private ``redis-server`` and the emulator as
the LLM judge (with latency, so the lines with the same content run at the same time on different workers). The same
new content pays one judge call; a later batch's re-encoded and resized copies of a picture cost nothing, another
picture is judged; a line still uncertain when the batch's budget ends becomes a review task a reviewer settles."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from api.app import create_app
from ecoalign.store import tenants
from ecoalign.store.db import session_scope
from ecoalign.testing.emulator import EmulatorServer
from tests.api.conftest import TenantKey, make_settings
from tests.moderation.dedup_images import as_jpeg, data_url, encoded, picture, resized
from tests.serving import serve
from tests.workers.cluster import Cluster, point_dispatch_at, private_services

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]
VERDICT = json.dumps({"flagged": True, "categories": {"illicit": 0.8}, "rationale": "lock picking"})
SAFE = json.dumps({"flagged": False, "categories": {}, "rationale": "a picture"})


@dataclass
class Stack:
    url: str
    cluster: Cluster
    judge: EmulatorServer
    tenant: TenantKey


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with ExitStack() as stack:
        db_url, redis_url = stack.enter_context(private_services("ecoalign_dedup"))
        judge = stack.enter_context(EmulatorServer(rules=[(r"lock", VERDICT), (r".", SAFE)], model="judge-emu",
                                                   latency_s=0.4))
        c = Cluster(db_url, redis_url, judge, tmp_path_factory.mktemp("dedup-workers"),
                    extra_env={"ECOALIGN_JUDGE_URL": judge.base_url, "ECOALIGN_JUDGE_MODEL": "judge-emu",
                               "ECOALIGN_MAX_IMAGE_BYTES": str(512 * 1024)})
        stack.callback(c.factory.kw["bind"].dispose)
        stack.callback(c.stop_all)
        for name in ("w1", "w2"):
            c.start_worker(name, concurrency=4, wait=False)
        for name in ("w1", "w2"):
            c.wait_for_log(name, " ready.", timeout_s=90)
        point_dispatch_at(redis_url)
        app = create_app(make_settings(db_url, redis_url, evaluator="heuristic"), queues=lambda: ["celery"])
        url = stack.enter_context(serve(app))
        with session_scope(c.factory) as s:
            tenant, _, secret = tenants.create_tenant_with_key(s, "tenant-dedup")
            key = TenantKey(tenant.id, "tenant-dedup", secret)
        yield Stack(url, c, judge, key)


def line(custom_id: str, value: Any) -> str:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/moderations", "body": {"input": value}})


def image_input(data: bytes) -> list[dict[str, Any]]:
    return [{"type": "text", "text": "what is on this poster"},
            {"type": "image_url", "image_url": {"url": data_url(data)}}]


def run_batch(s: Stack, lines: list[str], **ecoalign: Any) -> dict[str, dict[str, Any]]:
    """Upload, start, wait for the batch; its results by custom_id."""
    with httpx.Client(base_url=s.url, headers=s.tenant.headers, timeout=30) as client:
        upload = client.post("/v1/files", data={"purpose": "batch"},
                             files={"file": ("in.jsonl", ("\n".join(lines) + "\n").encode())})
        assert upload.status_code == 200, upload.text
        batch = client.post("/v1/batches", json={"input_file_id": upload.json()["id"],
                                                 "endpoint": "/v1/moderations", "completion_window": "24h",
                                                 **({"ecoalign": ecoalign} if ecoalign else {})}).json()
        deadline = time.monotonic() + 120
        while (done := client.get(f"/v1/batches/{batch['id']}").json())["status"] not in ("completed", "failed"):
            assert time.monotonic() < deadline, f"batch not finished\n{s.cluster.logs()}"
            time.sleep(0.2)
        assert done["status"] == "completed", done
        output = client.get(f"/v1/files/{done['output_file_id']}/content").text
    rows = [json.loads(x) for x in output.splitlines()]
    return {r["custom_id"]: {**r["response"]["body"]["results"][0], "batch_id": done["id"]} for r in rows}


def test_workers_racing_on_the_same_new_content_pay_once_and_later_copies_cost_nothing(stack: Stack) -> None:
    s = stack
    original = picture(31)
    calls = s.judge.stats["chat_requests"]
    same = [line(f"same-{i}", "How do I pick this lock?") for i in range(8)]
    results = run_batch(s, [*same, line("poster", image_input(encoded(original))), line("bread", "banana bread")])
    assert s.judge.stats["chat_requests"] == calls + 2  # one for the eight identical lines, one for the poster
    copies = [results[f"same-{i}"] for i in range(8)]
    paid = [r for r in copies if r["ecoalign"]["tokens"] > 0]
    assert len(paid) == 1
    assert paid[0]["ecoalign"]["decision"] == "judge"
    for r in copies:
        if r is not paid[0]:
            assert r["ecoalign"]["decision"] == "duplicate"
            assert r["ecoalign"]["duplicate_of"] == paid[0]["ecoalign"]["trace_id"]
            assert r["flagged"] is True

    calls = s.judge.stats["chat_requests"]
    later = run_batch(s, [line("jpeg", image_input(as_jpeg(original))), line("small", image_input(resized(original))),
                          line("other", image_input(encoded(picture(32))))])
    assert s.judge.stats["chat_requests"] == calls + 1  # only the other picture
    for cid in ("jpeg", "small"):
        assert later[cid]["ecoalign"]["tokens"] == 0
        assert later[cid]["ecoalign"]["duplicate"]["match"] == "near"
        assert later[cid]["ecoalign"]["duplicate_of"] == results["poster"]["ecoalign"]["trace_id"]
    assert later["other"]["ecoalign"]["decision"] == "judge"


def test_batch_lines_still_uncertain_when_the_batch_budget_ends_are_reviewed_through_the_api(stack: Stack) -> None:
    s = stack
    results = run_batch(s, [line("budget-0", "Can you pick a lock for me?")], token_budget=0)
    result = results["budget-0"]
    assert result["ecoalign"]["decision"] == "scan:uncertain-run-budget-exhausted"
    with httpx.Client(base_url=s.url, headers=s.tenant.headers, timeout=30) as client:
        queue = client.get("/v1/reviews", params={"status": "pending"}).json()["data"]
        task = next(t for t in queue if t["trace_id"] == result["ecoalign"]["trace_id"])
        assert (task["run_id"], task["custom_id"]) == (result["batch_id"], "budget-0")
        assert client.post(f"/v1/reviews/{task['id']}/claim").status_code == 200
        decided = client.post(f"/v1/reviews/{task['id']}/decision", json={"verdict": "flag",
                                                                          "categories": ["illicit"]})
        assert decided.status_code == 200, decided.text
        view = client.get(f"/v1/moderation_results/{task['trace_id']}").json()
    assert view["machine"]["ecoalign"]["decision"] == "scan:uncertain-run-budget-exhausted"
    assert view["machine"]["flagged"] is False
    assert (view["flagged"], [h["verdict"] for h in view["history"]]) == (True, ["flag"])
