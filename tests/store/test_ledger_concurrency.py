"""The ledger under real concurrency: many threads, each with its own Postgres connection, at READ COMMITTED.

A monitor thread reads the counters and the ledger *in one statement* (one snapshot) while the workers run:
``spent + reserved <= total`` and "counters == sums of the ledger" must hold at every instant, not just at the end.
SQLite runs the same workload too: there the transactions are serialised by ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.store import ledger
from ecoalign.store.db import make_engine, run_in_transaction, session_factory, session_scope

from .helpers import assert_consistent, new_job, new_tenant, tenant_counters

THREADS = 50

CONSISTENCY_SQL = text(
    """
    SELECT j.budget_total, j.budget_spent, j.budget_reserved,
           (SELECT COALESCE(SUM(spent_tokens), 0) FROM ledger_entries
             WHERE job_id = j.id AND state = 'settled'),
           (SELECT COALESCE(SUM(reserved_tokens), 0) FROM ledger_entries
             WHERE job_id = j.id AND state = 'reserved')
    FROM jobs j WHERE j.id = :id
    """
)


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"])
def wide_db(request: pytest.FixtureRequest) -> Iterator[sessionmaker[Session]]:
    """A session factory whose pool has a connection per thread (the concurrency is real on Postgres)."""
    base: Engine = request.getfixturevalue("pg_clean_engine" if request.param == "postgresql" else "sqlite_engine")
    if request.param == "postgresql":
        engine = make_engine(base.url.render_as_string(hide_password=False), pool_size=THREADS + 2, max_overflow=0)
    else:
        engine = base
    yield session_factory(engine)
    if engine is not base:
        engine.dispose()


def _run_threads(n: int, target: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def wrapped(i: int) -> None:
        try:
            barrier.wait(timeout=60)
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    return errors


class Monitor:
    """Polls the job's counters and ledger sums in one statement until stopped; records any violation."""

    def __init__(self, factory: sessionmaker[Session], job_id: str) -> None:
        self.factory, self.job_id = factory, job_id
        self.violations: list[tuple[Any, ...]] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._stop.is_set():
            with session_scope(self.factory) as s:
                total, spent, reserved, settled_sum, reserved_sum = s.execute(
                    CONSISTENCY_SQL, {"id": self.job_id}
                ).one()
            self.samples += 1
            if spent + reserved > total or spent != settled_sum or reserved != reserved_sum:
                self.violations.append((total, spent, reserved, settled_sum, reserved_sum))

    def __enter__(self) -> Monitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


@pytest.mark.slow
def test_many_workers_against_a_tight_budget(wide_db: sessionmaker[Session]) -> None:
    budget = 2_000
    job = new_job(wide_db, budget)
    rounds = 4
    granted: list[tuple[str, int]] = []
    denied: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        rng = random.Random(i)
        for r in range(rounds):
            key = f"w{i}-r{r}"
            want = rng.randint(50, 150)
            ok = run_in_transaction(wide_db, lambda s, k=key, w=want: ledger.reserve(s, job, k, "generate", w))
            with lock:
                (granted.append((key, want)) if ok else denied.append(key))
            if not ok:
                continue
            if rng.random() < 0.2:
                run_in_transaction(wide_db, lambda s, k=key: ledger.refund(s, job, k, "generate"))
                continue
            actual = rng.randint(0, int(want * 1.5))  # sometimes more than reserved: overrun
            for _ in range(rng.choice((1, 1, 2, 3))):  # redelivered settles
                run_in_transaction(wide_db, lambda s, k=key, a=actual: ledger.settle(s, job, k, "generate", a))

    with Monitor(wide_db, job) as monitor:
        errors = _run_threads(THREADS, worker)
    assert errors == []
    assert monitor.violations == [], monitor.violations[:5]
    assert monitor.samples > 0

    with session_scope(wide_db) as s:
        snap = assert_consistent(s, job)
        entries = ledger.entries(s, job)
    assert snap.reserved == 0
    assert snap.spent <= budget
    assert len(entries) == len(granted)  # one row per successful reservation, none for a failed one
    assert {e.node_id for e in entries} == {k for k, _ in granted}
    assert not {e.node_id for e in entries} & set(denied)
    assert denied, "the budget was meant to be tight enough to turn some reservations down"
    settled = [e for e in entries if e.state == "settled"]
    assert snap.spent == sum(e.spent_tokens for e in settled)
    with session_scope(wide_db) as s:
        calls = s.execute(text("SELECT model_calls FROM jobs WHERE id = :id"), {"id": job}).scalar_one()
    assert calls == len(settled)  # redelivered settles did not count twice


@pytest.mark.slow
def test_shared_tenant_budget_across_jobs(wide_db: sessionmaker[Session]) -> None:
    tenant = new_tenant(wide_db, total=3_000, daily=2_500)
    jobs = [new_job(wide_db, 1_000, tenant_id=tenant) for _ in range(5)]

    def worker(i: int) -> None:
        rng = random.Random(1000 + i)
        job = jobs[i % len(jobs)]
        for r in range(3):
            key = f"w{i}-r{r}"
            want = rng.randint(20, 120)
            if run_in_transaction(
                wide_db, lambda s, k=key, w=want: ledger.reserve(s, job, k, "generate", w, tenant_id=tenant)
            ):
                actual = rng.randint(0, want + 30)
                run_in_transaction(wide_db, lambda s, k=key, a=actual: ledger.settle(s, job, k, "generate", a))

    errors = _run_threads(THREADS, worker)
    assert errors == []
    with session_scope(wide_db) as s:
        spent = sum(assert_consistent(s, j).spent for j in jobs)
        t_spent, t_reserved, days = tenant_counters(s, tenant)
    assert t_reserved == 0
    assert t_spent == spent  # the tenant's counter is the sum of its jobs'
    assert t_spent <= 2_500  # the daily budget was the binding one
    assert len(days) == 1
    assert days[0][1] == t_spent


def test_duplicate_reservations_race(wide_db: sessionmaker[Session]) -> None:
    """The same reservation delivered to 20 workers at once: one row, reserved once, all told True."""
    job = new_job(wide_db, 1_000)
    results: list[bool] = []

    def worker(_: int) -> None:
        results.append(run_in_transaction(wide_db, lambda s: ledger.reserve(s, job, "n1", "generate", 300)))

    assert _run_threads(20, worker) == []
    assert results == [True] * 20
    with session_scope(wide_db) as s:
        assert ledger.snapshot(s, job) == (1000, 0, 300)
        assert len(ledger.entries(s, job)) == 1


def test_duplicate_settles_race(wide_db: sessionmaker[Session]) -> None:
    job = new_job(wide_db, 1_000)
    with session_scope(wide_db) as s:
        ledger.reserve(s, job, "n1", "generate", 300)
    results: list[int] = []

    def worker(i: int) -> None:
        # every redelivery reports its own figure; only the first to commit is billed
        results.append(run_in_transaction(wide_db, lambda s: ledger.settle(s, job, "n1", "generate", 100 + i)))

    assert _run_threads(20, worker) == []
    assert len(set(results)) == 1
    with session_scope(wide_db) as s:
        assert ledger.snapshot(s, job) == (1000, results[0], 0)
        assert s.execute(text("SELECT model_calls FROM jobs WHERE id = :id"), {"id": job}).scalar_one() == 1


@pytest.mark.postgres
def test_check_constraint_holds_under_a_racing_raw_update(pg_clean_engine: Engine) -> None:
    """Even code that bypasses the ledger cannot commit an overspent job: the CHECK rejects it."""
    factory = session_factory(pg_clean_engine)
    job = new_job(factory, 100)
    with session_scope(factory) as s:
        ledger.reserve(s, job, "a", "generate", 100)
    with pytest.raises(Exception, match="ck_jobs_budget_within_total"), session_scope(factory) as s:
        s.execute(text("UPDATE jobs SET budget_spent = budget_spent + 1 WHERE id = :id"), {"id": job})
