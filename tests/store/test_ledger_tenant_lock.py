"""Two post-paid settles for jobs of one tenant, at the same moment (two root scans finishing together), on
Postgres: they queue on the tenant's row instead of deadlocking (found by ``benchmarks/chaos.py``: 40P01 on
``tenants``, each transaction holding the FK check's KEY SHARE lock the other's ``FOR UPDATE`` waited on)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.store import ledger
from ecoalign.store.db import make_engine, session_factory, session_scope

from .helpers import new_job, new_tenant

pytestmark = pytest.mark.postgres


@pytest.fixture
def two_connections(pg_clean_engine: Engine) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    engine = make_engine(pg_clean_engine.url.render_as_string(hide_password=False), pool_size=4, max_overflow=0)
    yield engine, session_factory(engine)
    engine.dispose()


def test_two_post_paid_settles_of_one_tenant_queue_instead_of_deadlocking(
    two_connections: tuple[Engine, sessionmaker[Session]],
) -> None:
    engine, factory = two_connections
    tenant = new_tenant(factory)
    jobs = [new_job(factory, 1000, tenant_id=tenant) for _ in range(2)]
    # Hold each transaction at its tenant lock until both have got there: the interleaving that deadlocked.
    barrier = threading.Barrier(2, timeout=10)
    arrived: set[int] = set()

    @event.listens_for(engine, "before_cursor_execute")
    def _meet(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "FROM tenants" in statement and "FOR UPDATE" in statement:
            me = threading.get_ident()
            if me not in arrived:
                arrived.add(me)
                barrier.wait()

    errors: list[BaseException] = []

    def settle(job_id: str) -> None:
        try:
            with session_scope(factory) as s:  # no retry: a deadlock must not happen at all
                ledger.settle(s, job_id, "root", "scan", 7)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=settle, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    event.remove(engine, "before_cursor_execute", _meet)
    assert errors == []
    with session_scope(factory) as s:
        assert [ledger.snapshot(s, job).spent for job in jobs] == [7, 7]
