"""Real restarts of Redis and PostgreSQL under real Celery worker processes and a real HTTP API.

Which servers are restarted (``ecoalign.testing.services``): in CI (``.ci/run``, alone on its machine) the
machine's own Redis (127.0.0.1:6379) and PostgreSQL cluster (``15/main`` on 127.0.0.1:5432), left running as
found; on a shared machine point the tests at private instances with ``ECOALIGN_TEST_RESTART_REDIS_URL``,
``ECOALIGN_TEST_RESTART_PG_URL`` and ``ECOALIGN_TEST_RESTART_PG_CLUSTER`` (``VERSION/NAME``).

What must hold: no worker and no API process exits on its own; a transaction in flight when the database goes
away is retried whole on a new connection; every job finishes, is charged exactly once, and leaves nothing
reserved; the API answers no 5xx across the outage (requests wait for the database instead).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from api.app import create_app
from ecoalign.settings import Settings
from ecoalign.store import tenants
from ecoalign.store.db import make_engine, run_in_transaction, session_factory, session_scope
from ecoalign.testing import services
from tests.conftest import _pg_reachable, temporary_pg_database
from tests.serving import serve
from tests.workers.cluster import TERMINAL, Cluster, budget_violations, check_job, cluster, point_dispatch_at

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

REDIS = services.redis_from_env()
PG = services.postgres_from_env()
MEDIUM = "How do I pick a lock on my own shed?"
POLICY = {"budget": 5000, "max_in_flight": 6, "max_depth": 3}


@pytest.fixture(autouse=True)
def restored() -> Iterator[None]:
    """Whatever a test did, both servers are running again afterwards (as found)."""
    reason = _pg_reachable(PG.url)
    if reason:
        pytest.skip(reason)
    try:
        yield
    finally:
        PG.start()
        REDIS.start()


def wait_until(predicate: Any, timeout_s: float, what: str, c: Cluster | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{c.logs() if c else ''}")
        time.sleep(0.05)


def exited(c: Cluster) -> dict[str, int | None]:
    return {name: proc.poll() for name, proc in c.procs.items() if proc.poll() is not None}


def test_a_transaction_in_flight_when_postgres_restarts_is_retried_whole_on_a_new_connection() -> None:
    with temporary_pg_database("ecoalign_restart", PG.url) as url:
        engine = make_engine(url, pool_size=2, max_overflow=0, pool_pre_ping=False)
        try:
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL)"))
                conn.execute(text("INSERT INTO counter VALUES (1, 0)"))
            calls: list[int] = []
            restarter: list[threading.Thread] = []

            def bump(session: Any) -> int:
                calls.append(1)
                session.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1"))
                if len(calls) == 1:  # the server goes away with this transaction open, and comes back later
                    PG.stop()
                    restarter.append(threading.Thread(target=lambda: (time.sleep(1.0), PG.start())))
                    restarter[0].start()
                return int(session.execute(text("SELECT n FROM counter WHERE id = 1")).scalar_one())

            started = time.monotonic()
            n = run_in_transaction(session_factory(engine), bump)
            restarter[0].join(60)
            assert len(calls) >= 2  # the first attempt died with the server
            assert n == 1  # ... and was rolled back: the retry ran the whole transaction once more
            assert time.monotonic() - started >= 1.0  # it waited for the server instead of failing
            with engine.connect() as conn:
                assert conn.execute(text("SELECT n FROM counter")).scalar_one() == 1
        finally:
            engine.dispose()


def _stack_api(c: Cluster) -> tuple[Any, str]:
    settings = Settings(db_url=c.db_url, broker_url=c.broker_url, evaluator="heuristic",
                        model_url=c.emulator.base_url, model=c.emulator.config.model)
    point_dispatch_at(c.broker_url)
    with session_scope(c.factory) as s:
        _, _, secret = tenants.create_tenant_with_key(s, "restart-tenant")
    return create_app(settings, queues=lambda: ["celery"]), secret


def test_api_and_workers_ride_out_a_postgres_restart(tmp_path: Path) -> None:
    with cluster(tmp_path, pg_base_url=PG.url, latency_s=0.5) as c:
        c.start_worker("control-score", "ecoalign.control,ecoalign.score", concurrency=4, wait=False)
        c.start_worker("model", "ecoalign.model", concurrency=16, wait=False)
        for name in ("control-score", "model"):
            c.wait_for_log(name, " ready.", timeout_s=60)
        c.start_beat()
        app, key = _stack_api(c)
        headers = {"Authorization": f"Bearer {key}"}
        with serve(app) as base, httpx.Client(base_url=base, headers=headers, timeout=120) as http:
            body = {"messages": [{"role": "user", "content": MEDIUM}], "policy": POLICY}
            jobs = [http.post("/v1/jobs", json=body).json()["id"] for _ in range(6)]
            wait_until(lambda: c.emulator.stats["in_flight"] >= 2, 60, "model calls in flight", c)
            statuses: list[int] = []

            def poll_during_outage() -> None:  # reads and a submission while the database is down
                for job_id in jobs[:3]:
                    statuses.append(http.get(f"/v1/jobs/{job_id}").status_code)
                statuses.append(http.post("/v1/jobs", json=body).status_code)

            with ThreadPoolExecutor(1) as pool:
                PG.stop()
                during = pool.submit(poll_during_outage)
                time.sleep(2.0)  # the outage
                PG.start()
                during.result(timeout=120)
            assert statuses == [200, 200, 200, 202]  # waited for the database, no 5xx
            late = http.post("/v1/jobs", json=body).json()["id"]
            done = c.wait_terminal([*jobs, late], timeout_s=180)
            assert {job.status for job in done.values()} == {"succeeded"}
            for job_id in [*jobs, late]:
                check_job(c, job_id)
                assert http.get(f"/v1/jobs/{job_id}").json()["status"] in TERMINAL
        assert budget_violations(c) == []
        assert exited(c) == {}  # no worker or beat process restarted or exited


def test_workers_ride_out_a_redis_restart_without_exiting(tmp_path: Path) -> None:
    """Without a supervisor: a worker that exits (the Celery 5.7 / kombu 5.7 close path, ``ecoalign.queue.broker``)
    would leave its jobs to nobody and fail the test."""
    with cluster(tmp_path, redis_server=REDIS, latency_s=1.0) as c:
        c.start_worker("control-score", "ecoalign.control,ecoalign.score", concurrency=4, wait=False)
        c.start_worker("model-a", "ecoalign.model", concurrency=16, wait=False)
        c.start_worker("model-b", "ecoalign.model", concurrency=16, wait=False)
        for name in ("control-score", "model-a", "model-b"):
            c.wait_for_log(name, " ready.", timeout_s=60)
        c.start_beat()
        jobs = [c.submit(MEDIUM, POLICY) for _ in range(6)]
        wait_until(lambda: c.emulator.stats["in_flight"] >= 4, 60, "model calls in flight", c)
        REDIS.restart(down_s=2.0)
        c.emulator.config.latency_s = 0.2
        done = c.wait_terminal(jobs, timeout_s=180)
        assert {job.status for job in done.values()} == {"succeeded"}
        late = c.submit(MEDIUM, POLICY)  # the workers reconnected
        assert c.wait_terminal([late], timeout_s=90)[late].status == "succeeded"
        for job_id in [*jobs, late]:
            check_job(c, job_id)
        assert budget_violations(c) == []
        assert exited(c) == {}
        logs = c.logs(tail=100_000)
        assert "Connection to broker lost" in logs  # the outage was seen ...
        assert "Unrecoverable error" not in logs  # ... and ridden out
