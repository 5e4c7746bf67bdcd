"""Transactions of one tenant's jobs, each holding the ``KEY SHARE`` lock a foreign-key check takes on the tenant's
row, then locking the tenant's counters, at the same moment (Postgres): they must queue, not deadlock.

Found by ``benchmarks/chaos.py``: a node's commit updates its job row twice (the second ``UPDATE`` of a row this
transaction wrote fires the FK check on ``jobs.tenant_id``: ``KEY SHARE`` on the tenant) and then reserves; with
``FOR UPDATE`` on the tenant every such transaction waited on every other's share lock (40P01 on ``tenants``, and
a tenant's jobs stalled). ``tenants.lock_counters`` takes ``FOR NO KEY UPDATE``, which share locks do not block.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.store import ledger, repository
from ecoalign.store.db import make_engine, session_factory, session_scope

from .helpers import new_job, new_tenant

pytestmark = pytest.mark.postgres


@pytest.fixture
def wide(pg_clean_engine: Engine) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    engine = make_engine(pg_clean_engine.url.render_as_string(hide_password=False), pool_size=4, max_overflow=0)
    yield engine, session_factory(engine)
    engine.dispose()


def _together(engine: Engine, factory: sessionmaker[Session], work: Callable[[Session, str], None],
              jobs: list[str]) -> list[BaseException]:
    """Run ``work(session, job)`` for each job in its own thread and transaction (no retry: a deadlock must not
    happen at all), holding each at its tenant lock until all got there: the interleaving that deadlocked."""
    barrier = threading.Barrier(len(jobs), timeout=10)
    arrived: set[int] = set()

    @event.listens_for(engine, "before_cursor_execute")
    def _meet(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "FROM tenants" in statement and " FOR " in statement and threading.get_ident() not in arrived:
            arrived.add(threading.get_ident())
            barrier.wait()

    errors: list[BaseException] = []

    def run(job_id: str) -> None:
        try:
            with session_scope(factory) as s:
                work(s, job_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    event.remove(engine, "before_cursor_execute", _meet)
    return errors


def test_jobs_updated_twice_then_reserving_queue_on_their_tenant(wide: tuple[Engine, sessionmaker[Session]]) -> None:
    engine, factory = wide
    tenant = new_tenant(factory)
    jobs = [new_job(factory, 1000, tenant_id=tenant) for _ in range(3)]

    def scan_commit(s: Session, job_id: str) -> None:  # what a root scan's commit does to its job, then reserves
        repository.record_scan(s, job_id, {"safety": 0.5})
        repository.start_job(s, job_id)
        assert ledger.reserve(s, job_id, "n1", "generate", 100)

    assert _together(engine, factory, scan_commit, jobs) == []
    with session_scope(factory) as s:
        assert [ledger.snapshot(s, job).reserved for job in jobs] == [100, 100, 100]


def test_two_post_paid_settles_of_one_tenant_queue_instead_of_deadlocking(
    wide: tuple[Engine, sessionmaker[Session]],
) -> None:
    engine, factory = wide
    tenant = new_tenant(factory)
    jobs = [new_job(factory, 1000, tenant_id=tenant) for _ in range(2)]
    assert _together(engine, factory, lambda s, job: ledger.settle(s, job, "root", "scan", 7) and None, jobs) == []
    with session_scope(factory) as s:
        assert [ledger.snapshot(s, job).spent for job in jobs] == [7, 7]
