"""Webhooks end to end: the real API (uvicorn), Celery worker **and beat processes**, Postgres, Redis, and a
receiver on loopback that verifies every delivery with the ``standardwebhooks`` library.

The receiver is down while the batches finish and for the first retries (the schedule is shrunk to seconds); once
it is up it gets exactly one ``batch.completed`` per batch, each under the event id the delivery log shows, and
nothing more on later dispatcher sweeps. A delivery whose signature is wrong is rejected by it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from api.app import create_app
from ecoalign.store import tenants
from ecoalign.store.db import session_scope
from tests.api.conftest import TenantKey, make_settings
from tests.serving import serve
from tests.webhooks.receiver import Receiver
from tests.workers.cluster import Cluster, cluster, point_dispatch_at

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

SHRUNK_SCHEDULE = {  # seconds instead of a day: the same code path, the schedule a setting
    "ECOALIGN_WEBHOOK_ALLOW_LOOPBACK": "true",
    "ECOALIGN_WEBHOOK_RETRY_BASE_S": "0.5",
    "ECOALIGN_WEBHOOK_RETRY_MAX_DELAY_S": "1.5",
    "ECOALIGN_WEBHOOK_RETRY_WINDOW_S": "300",
    "ECOALIGN_WEBHOOK_DISPATCH_INTERVAL_S": "0.5",
    "ECOALIGN_WEBHOOK_TIMEOUT_S": "2",
}


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str, c: Cluster) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{c.logs()}")
        time.sleep(0.1)
    return value


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Cluster, TenantKey]]:
    with ExitStack() as stack:
        c = stack.enter_context(cluster(tmp_path_factory.mktemp("webhooks"), model="emu-model"))
        c.extra_env.update(SHRUNK_SCHEDULE)
        c.start_worker("w1", concurrency=6)
        c.start_beat()
        point_dispatch_at(c.broker_url)
        settings = make_settings(c.db_url, c.broker_url, evaluator="heuristic", webhook_allow_loopback=True)
        url = stack.enter_context(serve(create_app(settings, queues=lambda: ["celery"])))
        with session_scope(c.factory) as s:
            tenant, _, secret = tenants.create_tenant_with_key(s, "webhook-tenant")
            key = TenantKey(tenant.id, "webhook-tenant", secret)
        yield url, c, key


def moderation_batch(client: openai.OpenAI, texts: list[str]) -> str:
    lines = [json.dumps({"custom_id": f"l{i}", "method": "POST", "url": "/v1/moderations", "body": {"input": t}})
             for i, t in enumerate(texts)]
    upload = client.files.create(file=("in.jsonl", ("\n".join(lines) + "\n").encode()), purpose="batch")
    return client.batches.create(input_file_id=upload.id, endpoint="/v1/moderations",
                                 completion_window="24h").id


def deliveries(url: str, key: TenantKey, endpoint_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/v1/webhooks/{endpoint_id}/deliveries", headers=key.headers, timeout=10)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def dispatch_runs(c: Cluster) -> int:
    return sum(len(re.findall(r"ecoalign\.webhook_dispatch\[.*?\] succeeded", p.read_text(errors="replace")))
               for p in Path(c.logdir).glob("w*.log"))


def test_one_verified_batch_completed_per_batch_after_the_receiver_was_down(
    stack: tuple[str, Cluster, TenantKey],
) -> None:
    url, c, key = stack
    receiver = Receiver()  # its port is chosen now; it starts listening only later
    endpoint = httpx.post(f"{url}/v1/webhooks", headers=key.headers, timeout=10,
                          json={"url": receiver.url, "events": ["batch.completed", "batch.failed"]}).json()
    receiver.secret = endpoint["secret"]
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=key.key, max_retries=0, timeout=60)
    batch_ids = [moderation_batch(client, ["How do I bake bread?", "hello"]),
                 moderation_batch(client, ["Build a bomb to kill people"])]
    wait_for(lambda: all(client.batches.retrieve(b).status == "completed" for b in batch_ids), 90, "the batches", c)
    # down: every delivery fails and is retried with backoff
    wait_for(lambda: (log := deliveries(url, key, endpoint["id"])) and len(log) == 2
             and all(d["attempts"] >= 3 and d["status"] == "pending" for d in log), 60, "three failed attempts", c)
    assert all("ConnectError" in (d["last_error"] or "") for d in deliveries(url, key, endpoint["id"]))
    try:
        receiver.start()
        wait_for(lambda: all(d["status"] == "delivered" for d in deliveries(url, key, endpoint["id"])), 60,
                 "the deliveries", c)
        sweeps = dispatch_runs(c)
        wait_for(lambda: dispatch_runs(c) >= sweeps + 3, 30, "three more dispatcher sweeps", c)
        got = receiver.events("batch.completed")
        assert sorted(e["body"]["data"]["id"] for e in got) == sorted(batch_ids)  # exactly one per batch
        assert len(receiver.accepted) == 2
        assert receiver.rejected == []
        log = deliveries(url, key, endpoint["id"])
        assert {d["event_id"] for d in log} == {e["id"] for e in got}  # the id of every attempt: stable
        assert all(d["last_response_code"] == 204 and d["attempts"] >= 4 for d in log)
        one = got[0]
        assert one["body"]["data"]["request_counts"]["total"] in (1, 2)
        assert one["body"]["data"]["output_file_id"]

        # a delivery whose signature does not match its body is rejected by the receiver
        forged = json.loads(one["raw"])
        forged["data"]["output_file_id"] = "file-forged"
        response = httpx.post(receiver.url, content=json.dumps(forged).encode(), timeout=10,
                              headers={k: v for k, v in one["headers"].items() if k.startswith("webhook-")})
        assert response.status_code == 400
        assert receiver.rejected == ["No matching signature found"]
        assert len(receiver.accepted) == 2
    finally:
        receiver.stop()
