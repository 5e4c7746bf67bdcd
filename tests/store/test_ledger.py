"""Ledger semantics on Postgres and SQLite: reserve → settle/refund, redelivery, overrun, tenant budgets."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.store import ledger
from ecoalign.store.db import session_scope
from ecoalign.store.ledger import LedgerError
from ecoalign.store.models import Job, LedgerEntry

from .helpers import assert_consistent, ledger_sums, new_job, new_tenant, tenant_counters

Factory = sessionmaker[Session]


@pytest.fixture
def db(db_in_transaction: Factory) -> Factory:
    """One connection suffices here: every test runs in a transaction rolled back at teardown (tests/conftest.py)."""
    return db_in_transaction


def _entry(s: Session, job_id: str, key: str, kind: str) -> LedgerEntry | None:
    return s.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.job_id == job_id, LedgerEntry.node_id == key, LedgerEntry.kind == kind)
        .execution_options(populate_existing=True)
    ).first()


def _model_calls(s: Session, job_id: str) -> int:
    return int(s.execute(select(Job.model_calls).where(Job.id == job_id)).scalar_one())


def test_reserve_then_settle(db: Factory) -> None:
    job = new_job(db, 1000)
    with session_scope(db) as s:
        assert ledger.reserve(s, job, "n1", "generate", 100)
    with session_scope(db) as s:
        assert ledger.snapshot(s, job) == (1000, 0, 100)
        assert ledger.snapshot(s, job).remaining == 900
    with session_scope(db) as s:
        assert ledger.settle(s, job, "n1", "generate", 80) == 80
    with session_scope(db) as s:
        assert ledger.snapshot(s, job) == (1000, 80, 0)
        entry = _entry(s, job, "n1", "generate")
        assert entry is not None
        assert (entry.state, entry.reserved_tokens, entry.spent_tokens, entry.overrun_tokens) == ("settled", 100, 80, 0)
        assert entry.settled_at is not None
        assert entry.settled_at.tzinfo is not None
        assert _model_calls(s, job) == 1
        assert_consistent(s, job)


def test_redelivered_reserve_does_not_reserve_twice(db: Factory) -> None:
    job = new_job(db, 1000)
    for _ in range(3):
        with session_scope(db) as s:
            assert ledger.reserve(s, job, "n1", "generate", 100)
    with session_scope(db) as s:
        assert ledger.snapshot(s, job) == (1000, 0, 100)
        assert len(ledger.entries(s, job)) == 1
    # the same node may hold one reservation per kind
    with session_scope(db) as s:
        assert ledger.reserve(s, job, "n1", "evaluate", 50)
        assert ledger.snapshot(s, job).reserved == 150


def test_redelivered_settle_charges_once(db: Factory) -> None:
    job = new_job(db, 1000)
    with session_scope(db) as s:
        ledger.reserve(s, job, "n1", "generate", 100)
    for _ in range(3):
        with session_scope(db) as s:
            assert ledger.settle(s, job, "n1", "generate", 70) == 70
    with session_scope(db) as s:
        # a redelivery reporting a different figure changes nothing either: the first settle is the bill
        assert ledger.settle(s, job, "n1", "generate", 999) == 70
    with session_scope(db) as s:
        assert ledger.snapshot(s, job) == (1000, 70, 0)
        assert _model_calls(s, job) == 1
        # reserve after settle: the key is used, reports True (it was granted), charges nothing
        assert ledger.reserve(s, job, "n1", "generate", 100)
        assert ledger.snapshot(s, job) == (1000, 70, 0)


def test_refund_is_idempotent_and_keys_are_single_use(db: Factory) -> None:
    job = new_job(db, 1000)
    with session_scope(db) as s:
        ledger.reserve(s, job, "n1", "rollout", 300)
    with session_scope(db) as s:
        assert ledger.refund(s, job, "n1", "rollout") is True
    with session_scope(db) as s:
        assert ledger.refund(s, job, "n1", "rollout") is False
        assert ledger.refund(s, job, "never-reserved", "rollout") is False
        assert ledger.snapshot(s, job) == (1000, 0, 0)
        assert ledger.reserve(s, job, "n1", "rollout", 300) is False  # refunded key: not reserved again
        assert ledger.snapshot(s, job) == (1000, 0, 0)
        entry = _entry(s, job, "n1", "rollout")
        assert entry is not None
        assert entry.state == "refunded"


def test_settle_after_refund_charges_late(db: Factory) -> None:
    """A call still in flight when its job was cancelled really spent tokens: they are charged late."""
    job = new_job(db, 1000)
    with session_scope(db) as s:
        ledger.reserve(s, job, "n1", "generate", 200)
        ledger.reserve(s, job, "n2", "generate", 200)
    with session_scope(db) as s:
        assert ledger.release_all(s, job) == 400
    with session_scope(db) as s:
        assert ledger.settle(s, job, "n1", "generate", 150) == 150
        assert ledger.settle(s, job, "n1", "generate", 150) == 150
        assert ledger.snapshot(s, job) == (1000, 150, 0)
        assert _model_calls(s, job) == 1
        assert_consistent(s, job)


def test_failed_reserve_leaves_nothing(db: Factory) -> None:
    job = new_job(db, 100)
    with session_scope(db) as s:
        assert ledger.reserve(s, job, "a", "generate", 60)
    with session_scope(db) as s:
        assert ledger.reserve(s, job, "b", "generate", 50) is False
    with session_scope(db) as s:
        assert _entry(s, job, "b", "generate") is None
        assert ledger.snapshot(s, job) == (100, 0, 60)
        assert ledger.reserve(s, job, "b", "generate", 40)  # the same key may try again later
        assert ledger.snapshot(s, job) == (100, 0, 100)
        assert ledger.reserve(s, job, "c", "generate", 0)  # zero always fits
        assert ledger.reserve(s, job, "d", "generate", 1) is False


def test_overrun_is_recorded_and_the_budget_holds(db: Factory) -> None:
    job = new_job(db, 100)
    with session_scope(db) as s:
        assert ledger.reserve(s, job, "a", "generate", 50)
        assert ledger.reserve(s, job, "b", "generate", 40)
    with session_scope(db) as s:
        # 70 real tokens; only 100 - 0 - 40 = 60 may be charged while b holds its 40
        assert ledger.settle(s, job, "a", "generate", 70) == 60
    with session_scope(db) as s:
        entry = _entry(s, job, "a", "generate")
        assert entry is not None
        assert (entry.spent_tokens, entry.overrun_tokens) == (60, 10)
        assert ledger.snapshot(s, job) == (100, 60, 40)
        assert ledger.settle(s, job, "b", "generate", 10) == 10
        assert ledger.snapshot(s, job) == (100, 70, 0)
        assert_consistent(s, job)


def test_release_all_refunds_only_reserved(db: Factory) -> None:
    job = new_job(db, 1000)
    with session_scope(db) as s:
        for key in ("a", "b", "c"):
            ledger.reserve(s, job, key, "generate", 100)
        ledger.reserve(s, job, "scan", "scan", 10)
    with session_scope(db) as s:
        ledger.settle(s, job, "a", "generate", 90)
        ledger.refund(s, job, "b", "generate")
    with session_scope(db) as s:
        assert ledger.release_all(s, job) == 110
    with session_scope(db) as s:
        assert ledger.release_all(s, job) == 0
        assert ledger.snapshot(s, job) == (1000, 90, 0)
        states = {(e.node_id, e.kind): e.state for e in ledger.entries(s, job)}
        assert states == {
            ("a", "generate"): "settled",
            ("b", "generate"): "refunded",
            ("c", "generate"): "refunded",
            ("scan", "scan"): "refunded",
        }


def test_errors(db: Factory) -> None:
    job = new_job(db, 100)
    with session_scope(db) as s:
        with pytest.raises(LedgerError):
            ledger.reserve(s, "no-such-job", "a", "generate", 1)
        with pytest.raises(LedgerError):
            ledger.settle(s, "no-such-job", "a", "generate", 1)
        with pytest.raises(ValueError, match="not a valid LedgerKind"):
            ledger.reserve(s, job, "a", "teleport", 1)
        with pytest.raises(ValueError, match="tokens must be >= 0"):
            ledger.reserve(s, job, "a", "generate", -1)
        with pytest.raises(ValueError, match="actual_tokens must be >= 0"):
            ledger.settle(s, job, "a", "generate", -1)
        with pytest.raises(LedgerError):
            ledger.snapshot(s, "no-such-job")
        with pytest.raises(LedgerError):  # a job can only charge its own tenant
            ledger.reserve(s, job, "a", "generate", 10, tenant_id="no-such-tenant")
        # nothing was left behind, even in this still-open transaction
        assert ledger.snapshot(s, job) == (100, 0, 0)
        assert ledger.entries(s, job) == []


def test_post_paid_settle_without_reservation(db: Factory) -> None:
    """A call whose cost is known only afterwards (the scan) is charged at settle, as far as the budget allows."""
    job = new_job(db, 100)
    with session_scope(db) as s:
        assert ledger.reserve(s, job, "a", "generate", 70)
        assert ledger.settle(s, job, "root", "scan", 50) == 30  # only 30 are not promised to "a"
        assert ledger.settle(s, job, "root", "scan", 50) == 30  # redelivered: same answer, no new charge
    with session_scope(db) as s:
        entry = _entry(s, job, "root", "scan")
        assert entry is not None
        assert (entry.state, entry.reserved_tokens, entry.spent_tokens, entry.overrun_tokens) == ("settled", 0, 30, 20)
        assert ledger.snapshot(s, job) == (100, 30, 70)
        assert _model_calls(s, job) == 1
        assert_consistent(s, job)


def test_check_constraint_rejects_overspending_update(db: Factory) -> None:
    job = new_job(db, 100)
    with pytest.raises(IntegrityError), session_scope(db) as s:
        s.execute(text("UPDATE jobs SET budget_spent = 80, budget_reserved = 30 WHERE id = :id"), {"id": job})
    with pytest.raises(IntegrityError), session_scope(db) as s:
        s.execute(text("UPDATE jobs SET budget_reserved = -1 WHERE id = :id"), {"id": job})
    tenant = new_tenant(db, total=10)
    with pytest.raises(IntegrityError), session_scope(db) as s:
        s.execute(text("UPDATE tenants SET tokens_spent = 11 WHERE id = :id"), {"id": tenant})
    with session_scope(db) as s:
        assert ledger.snapshot(s, job) == (100, 0, 0)


# -- tenants ---------------------------------------------------------------------------------------------------
def test_tenant_total_budget_is_enforced_in_the_same_step(db: Factory) -> None:
    tenant = new_tenant(db, total=100)
    job1 = new_job(db, 1000, tenant_id=tenant)
    job2 = new_job(db, 1000, tenant_id=tenant)
    day = date(2026, 1, 1)
    with session_scope(db) as s:
        assert ledger.reserve(s, job1, "a", "generate", 80, tenant_id=tenant, day=day)
    with session_scope(db) as s:
        assert ledger.reserve(s, job2, "a", "generate", 30, tenant_id=tenant, day=day) is False
    with session_scope(db) as s:
        # nothing moved anywhere for the failed one: not the job, not the tenant, not the day, no row
        assert ledger.snapshot(s, job2) == (1000, 0, 0)
        assert ledger.entries(s, job2) == []
        assert tenant_counters(s, tenant) == (0, 80, [(day, 0, 80)])
        assert ledger.reserve(s, job2, "a", "generate", 20, tenant_id=tenant, day=day)
        assert tenant_counters(s, tenant) == (0, 100, [(day, 0, 100)])
    with session_scope(db) as s:
        # 90 real tokens on job1, but the tenant has only 100 - 20 (held by job2) = 80 to give
        assert ledger.settle(s, job1, "a", "generate", 90) == 80
        assert ledger.settle(s, job2, "a", "generate", 5) == 5
    with session_scope(db) as s:
        assert tenant_counters(s, tenant) == (85, 0, [(day, 85, 0)])
        assert ledger.snapshot(s, job1) == (1000, 80, 0)
        assert _entry(s, job1, "a", "generate").overrun_tokens == 10  # type: ignore[union-attr]
        assert_consistent(s, job1)
        assert_consistent(s, job2)


def test_tenant_daily_budget(db: Factory) -> None:
    tenant = new_tenant(db, daily=50)
    job = new_job(db, 1000, tenant_id=tenant)
    d1, d2 = date(2026, 1, 1), date(2026, 1, 2)
    with session_scope(db) as s:
        assert ledger.reserve(s, job, "a", "generate", 40, tenant_id=tenant, day=d1)
        assert ledger.reserve(s, job, "b", "generate", 20, tenant_id=tenant, day=d1) is False
        assert ledger.reserve(s, job, "b", "generate", 20, tenant_id=tenant, day=d2)
    with session_scope(db) as s:
        assert tenant_counters(s, tenant) == (0, 60, [(d1, 0, 40), (d2, 0, 20)])
        assert ledger.snapshot(s, job).reserved == 60
        # settled on the day it was reserved on, and capped by that day's budget
        assert ledger.settle(s, job, "a", "generate", 55) == 50
        assert ledger.refund(s, job, "b", "generate")
    with session_scope(db) as s:
        assert tenant_counters(s, tenant) == (50, 0, [(d1, 50, 0), (d2, 0, 0)])
        assert_consistent(s, job)


def test_the_jobs_tenant_is_charged_without_being_named(db: Factory) -> None:
    tenant = new_tenant(db, total=100)
    job = new_job(db, 1000, tenant_id=tenant)
    other = new_tenant(db)
    with session_scope(db) as s:
        assert ledger.reserve(s, job, "a", "generate", 60)  # no tenant_id: the job's tenant anyway
        assert ledger.reserve(s, job, "b", "generate", 60) is False
        with pytest.raises(LedgerError):
            ledger.reserve(s, job, "b", "generate", 10, tenant_id=other)
        assert ledger.settle(s, job, "scan", "scan", 10) == 10  # post-paid: the tenant pays too
    with session_scope(db) as s:
        spent, reserved, days = tenant_counters(s, tenant)
        assert (spent, reserved) == (10, 60)
        assert [(sp, r) for _, sp, r in days] == [(10, 60)]


def test_tenant_release_all_and_default_day(db: Factory) -> None:
    tenant = new_tenant(db, total=1000, daily=1000)
    job = new_job(db, 1000, tenant_id=tenant)
    with session_scope(db) as s:
        for key in ("a", "b", "c"):
            assert ledger.reserve(s, job, key, "generate", 100, tenant_id=tenant)
        ledger.settle(s, job, "a", "generate", 10)
    with session_scope(db) as s:
        assert ledger.release_all(s, job) == 200
    with session_scope(db) as s:
        spent, reserved, days = tenant_counters(s, tenant)
        assert (spent, reserved) == (10, 0)
        assert len(days) == 1
        assert days[0][1:] == (10, 0)
        assert abs((days[0][0] - date.today()).days) <= 1  # type: ignore[operator]
        assert ledger_sums(s, job) == (10, 0)


def test_tenant_daily_rows_across_days_release(db: Factory) -> None:
    tenant = new_tenant(db)
    job = new_job(db, 1000, tenant_id=tenant)
    d1 = date(2026, 3, 1)
    with session_scope(db) as s:
        for i in range(4):
            ledger.reserve(s, job, f"k{i}", "generate", 10 * (i + 1), tenant_id=tenant, day=d1 + timedelta(i % 2))
    with session_scope(db) as s:
        assert ledger.release_all(s, job) == 100
        assert tenant_counters(s, tenant) == (0, 0, [(d1, 0, 0), (d1 + timedelta(1), 0, 0)])


def test_settle_refuses_counters_someone_changed_behind_the_ledger(db: Factory) -> None:
    """The job's counters must match its entries: if they do not, settling raises and writes nothing."""
    job = new_job(db, 100)
    with session_scope(db) as s:
        assert ledger.reserve(s, job, "a", "generate", 40)
    with session_scope(db) as s:  # a write that bypassed the ledger
        s.execute(update(Job).where(Job.id == job).values(budget_reserved=0, version=Job.version))
    with pytest.raises(LedgerError), session_scope(db) as s:
        ledger.settle(s, job, "a", "generate", 30)
    with session_scope(db) as s:
        assert [e.state for e in ledger.entries(s, job)] == ["reserved"]
        assert ledger.snapshot(s, job) == (100, 0, 0)
