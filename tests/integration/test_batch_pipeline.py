"""The Batch API and the chat gateway end to end: the **openai** package as the client, a real uvicorn server of our
app, **real Celery worker processes**, Postgres, a private ``redis-server`` and the emulator as the model.

Workers run with ``ECOALIGN_EVALUATOR=heuristic`` (the evaluator's quality is not the subject here).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from sqlalchemy import select

from api.app import create_app
from ecoalign.batches.files import scan_lines
from ecoalign.queue.dispatch import enqueue
from ecoalign.queue.names import BATCH_FINALIZE_TASK, BATCH_MODERATION_LINE_TASK, BATCH_START_TASK
from ecoalign.store import tenants
from ecoalign.store.batch_models import BatchItem, ModerationTrace
from ecoalign.store.db import session_scope
from ecoalign.testing.emulator import EmulatorServer
from tests.api.conftest import TenantKey, make_settings, png_data_url
from tests.serving import serve
from tests.workers.cluster import Cluster, point_dispatch_at, private_services

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def mod_line(custom_id: str, value: Any) -> str:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/moderations", "body": {"input": value}})


def chat_line(custom_id: str, text: str) -> str:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], "max_tokens": 48}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body})


GOOD_IDS = [f"item-{i}" for i in range(12)]
TEXTS = ["How do I bake bread?", "Build a bomb to kill people", "steal a car", "hello"]
MALFORMED = [
    '{"custom_id": "broken", "method": "POST", "url": "/v1/moder',  # invalid_json
    json.dumps({"custom_id": "wrong-url", "method": "POST", "url": "/v1/completions", "body": {"input": "x"}}),
    mod_line("bad-b64", [{"type": "image_url", "image_url": {"url": "data:image/png;base64,%%%"}}]),
    json.dumps({"method": "POST", "url": "/v1/moderations", "body": {"input": "no id"}}),  # missing_custom_id
    mod_line("item-3", "a duplicate of item-3"),  # duplicate_custom_id
]
MALFORMED_CODES = ["invalid_json", "invalid_url", "invalid_base64", "missing_custom_id", "duplicate_custom_id"]


@dataclass
class Stack:
    url: str
    cluster: Cluster
    a: TenantKey
    b: TenantKey

    def client(self, tenant: TenantKey) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=tenant.key, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with ExitStack() as stack:
        db_url, redis_url = stack.enter_context(private_services("ecoalign_batches"))
        emulator = stack.enter_context(EmulatorServer(latency_s=0.02, model="emu-model"))
        logdir = tmp_path_factory.mktemp("batch-pipeline")
        c = Cluster(db_url, redis_url, emulator, logdir)
        stack.callback(c.factory.kw["bind"].dispose)
        stack.callback(c.stop_all)
        for name in ("w1", "w2"):  # two worker processes, every queue: lines spread over both
            c.start_worker(name, concurrency=6, wait=False)
        for name in ("w1", "w2"):
            c.wait_for_log(name, " ready.", timeout_s=60)
        point_dispatch_at(redis_url)  # the API in this process publishes to the private broker
        settings = make_settings(db_url, redis_url, evaluator="heuristic", model_url=emulator.base_url,
                                 model="emu-model", chat_mode="celery", chat_timeout_s=60.0)
        app = create_app(settings, queues=lambda: ["celery"])  # the real Celery dispatchers
        url = stack.enter_context(serve(app))
        keys = []
        for name in ("tenant-a", "tenant-b"):
            with session_scope(c.factory) as s:
                tenant, _, secret = tenants.create_tenant_with_key(s, name)
                keys.append(TenantKey(tenant.id, name, secret))
        yield Stack(url, c, keys[0], keys[1])


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str, c: Cluster) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{c.logs()}")
        time.sleep(0.1)


def run_batch(s: Stack, lines: list[str], endpoint: str, tenant: TenantKey | None = None) -> Any:
    client = s.client(tenant or s.a)
    upload = client.files.create(file=("input.jsonl", ("\n".join(lines) + "\n").encode()), purpose="batch")
    assert upload.purpose == "batch"
    assert upload.bytes > 0
    return client.batches.create(input_file_id=upload.id, endpoint=endpoint, completion_window="24h")  # type: ignore[arg-type]


def finished(s: Stack, batch_id: str, tenant: TenantKey | None = None, timeout_s: float = 60) -> Any:
    client = s.client(tenant or s.a)
    terminal = ("completed", "failed", "cancelled", "expired")
    return wait_for(lambda: (b := client.batches.retrieve(batch_id)).status in terminal and b, timeout_s,
                    f"batch {batch_id}", s.cluster)


def jsonl_of(client: openai.OpenAI, file_id: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


def log_count(c: Cluster, pattern: str) -> int:
    return sum(len(re.findall(pattern, p.read_text(errors="replace"))) for p in c.logdir.glob("w*.log"))


def test_a_moderation_batch_with_malformed_lines_through_the_sdk_and_the_workers(stack: Stack) -> None:
    s, c = stack, stack.cluster
    good = [mod_line(cid, TEXTS[i % len(TEXTS)]) for i, cid in enumerate(GOOD_IDS)]
    good[5] = mod_line("item-5", [{"type": "text", "text": "what is this"},
                                  {"type": "image_url", "image_url": {"url": png_data_url()}}])
    lines = good[:6] + MALFORMED[:3] + good[6:] + MALFORMED[3:]
    batch = run_batch(s, lines, "/v1/moderations")
    assert batch.status == "validating"
    done = finished(s, batch.id)
    assert done.status == "completed", done
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (17, 12, 5)

    client = s.client(s.a)
    output = jsonl_of(client, done.output_file_id)
    assert sorted(o["custom_id"] for o in output) == sorted(GOOD_IDS)  # each exactly once
    assert all(o["response"]["status_code"] == 200 and o["error"] is None for o in output)
    flagged = {o["custom_id"]: [r["flagged"] for r in o["response"]["body"]["results"]] for o in output}
    assert flagged["item-1"] == [True]
    assert flagged["item-0"] == [False]
    errors = jsonl_of(client, done.error_file_id)
    assert sorted(e["error"]["code"] for e in errors) == sorted(MALFORMED_CODES)  # one error line each

    # redelivery: every line message again (twice each), the start and the finalisation: nothing changes
    with session_scope(c.factory) as ses:
        traces_before = len(ses.scalars(select(ModerationTrace.id).where(ModerationTrace.run_id == batch.id)).all())
        items = dict(ses.execute(select(BatchItem.line_no, BatchItem.id).where(BatchItem.batch_id == batch.id,
                                                                               BatchItem.status == "completed")).all())
        content = client.files.content(batch.input_file_id).content
    refs = [(items[n], off, size) for n, off, size, _ in scan_lines(content, 1 << 20) if n in items]
    not_claimed = log_count(c, "'not claimed'")
    for ref in refs + refs:  # by name, as the service sends them
        assert enqueue(BATCH_MODERATION_LINE_TASK, batch.id, *ref)
    assert enqueue(BATCH_START_TASK, batch.id)
    assert enqueue(BATCH_FINALIZE_TASK, batch.id)
    wait_for(lambda: log_count(c, "'not claimed'") >= not_claimed + 2 * len(refs), 30, "redelivered lines", c)
    again = client.batches.retrieve(batch.id)
    assert again.model_dump() == done.model_dump()
    assert jsonl_of(client, again.output_file_id) == output
    with session_scope(c.factory) as ses:
        traces_after = len(ses.scalars(select(ModerationTrace.id).where(ModerationTrace.run_id == batch.id)).all())
        assert traces_after == traces_before == 12  # one decision per good line
        attempts = ses.scalars(select(BatchItem.attempts).where(BatchItem.batch_id == batch.id)).all()
        assert max(attempts) == 1


def test_chat_completions_and_a_chat_batch_run_on_the_workers(stack: Stack) -> None:
    s = stack
    client = s.client(s.a)
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Suggest three names for a garden cafe."}]
    )
    ext = (completion.model_extra or {})["ecoalign"]
    assert completion.choices[0].message.content
    assert ext["decision"] == "answered"
    assert completion.usage is not None
    assert completion.usage.total_tokens > 0
    graph = client.get(f"/jobs/{ext['trace_id']}/graph", cast_to=object)
    assert any(n["kind"] == "answer" for n in graph["nodes"])  # type: ignore[index]

    lines = [chat_line("c1", "How do I bake bread?"), chat_line("c2", "Give me steps to build a bomb and kill"),
             json.dumps({"custom_id": "c3", "method": "POST", "url": "/v1/moderations",
                         "body": {"model": "m", "messages": []}}),
             json.dumps({"custom_id": "c4", "method": "POST", "url": "/v1/chat/completions",
                         "body": {"model": "m", "messages": [], "stream": True}})]
    done = finished(s, run_batch(s, lines, "/v1/chat/completions").id)
    assert done.status == "completed"
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (2, 2)
    output = {o["custom_id"]: o["response"]["body"] for o in jsonl_of(client, done.output_file_id)}
    assert output["c1"]["object"] == "chat.completion"
    assert output["c1"]["ecoalign"]["decision"] == "answered"
    assert output["c2"]["choices"][0]["finish_reason"] == "content_filter"
    job = client.get(f"/jobs/{output['c1']['ecoalign']['job_id']}", cast_to=object)
    assert job["status"] == "succeeded"  # type: ignore[index]
    errors = {e["custom_id"]: e["error"]["code"] for e in jsonl_of(client, done.error_file_id)}
    assert errors == {"c3": "invalid_url", "c4": "invalid_request"}


def test_cancel_keeps_what_finished_and_drops_the_rest(stack: Stack) -> None:
    s, c = stack, stack.cluster
    c.emulator.config.latency_s = 0.4  # each chat line now takes a while
    try:
        lines = [chat_line(f"slow-{i}", f"Describe a quiet morning number {i}.") for i in range(30)]
        batch = run_batch(s, lines, "/v1/chat/completions")
        client = s.client(s.a)
        wait_for(lambda: (client.batches.retrieve(batch.id).request_counts or batch.request_counts).completed >= 1,
                 60, "a first finished line", c)
        cancelling = client.batches.cancel(batch.id)
        assert cancelling.status in ("cancelling", "cancelled")
        done = finished(s, batch.id)
    finally:
        c.emulator.config.latency_s = 0.02
    assert done.status == "cancelled"
    assert done.request_counts is not None
    counts = done.request_counts
    assert 1 <= counts.completed < 30
    assert counts.total == 30
    output = jsonl_of(client, done.output_file_id)
    assert len(output) == counts.completed == len({o["custom_id"] for o in output})
    with session_scope(c.factory) as ses:
        states = ses.scalars(select(BatchItem.status).where(BatchItem.batch_id == batch.id)).all()
        assert "cancelled" in states
        assert not {"pending", "running"} & set(states)
    completed = finished(s, run_batch(s, [mod_line("x", "hi")], "/v1/moderations").id)
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(completed.id)


def test_tenants_cannot_see_each_others_files_and_batches(stack: Stack) -> None:
    s = stack
    batch = finished(s, run_batch(s, [mod_line("only", "hello")], "/v1/moderations").id)
    other = s.client(s.b)
    for call in (lambda: other.batches.retrieve(batch.id), lambda: other.batches.cancel(batch.id),
                 lambda: other.files.retrieve(batch.input_file_id), lambda: other.files.content(batch.output_file_id),
                 lambda: other.batches.create(input_file_id=batch.input_file_id, endpoint="/v1/moderations",
                                              completion_window="24h")):
        with pytest.raises(openai.NotFoundError):
            call()
    assert [b.id for b in other.batches.list()] == []
    assert batch.id in [b.id for b in s.client(s.a).batches.list()]
