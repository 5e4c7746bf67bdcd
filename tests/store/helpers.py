"""Small builders shared by the store tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import func, inspect, select
from sqlalchemy.engine.reflection import Inspector
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.store import ledger, repository, tenants
from ecoalign.store.db import make_engine, session_scope
from ecoalign.store.models import LedgerEntry, LedgerState, Tenant, TenantDailyUsage

T = TypeVar("T")


def inspected(url: str, read: Callable[[Inspector], T]) -> T:
    """``read(inspector)`` on a short-lived engine for ``url`` (schema checks of the migration tests)."""
    engine = make_engine(url)
    try:
        return read(inspect(engine))
    finally:
        engine.dispose()


def new_tenant(factory: sessionmaker[Session], *, total: int | None = None, daily: int | None = None) -> str:
    with session_scope(factory) as s:
        tenant = tenants.create_tenant(
            s, f"tenant-{uuid.uuid4().hex[:8]}", token_budget_total=total, token_budget_daily=daily
        )
        return tenant.id


def new_job(factory: sessionmaker[Session], budget: int, *, tenant_id: str | None = None) -> str:
    with session_scope(factory) as s:
        job, created = repository.create_job(
            s,
            strategy="ecoalign",
            request={"messages": [{"role": "user", "content": "hello"}]},
            policy={"budget": budget},
            budget_total=budget,
            tenant_id=tenant_id,
            root_text="hello",
        )
        assert created
        return job.id


def ledger_sums(session: Session, job_id: str) -> tuple[int, int]:
    """(sum of spent over settled entries, sum of reserved over reserved entries) of a job."""
    spent = session.execute(
        select(func.coalesce(func.sum(LedgerEntry.spent_tokens), 0)).where(
            LedgerEntry.job_id == job_id, LedgerEntry.state == LedgerState.SETTLED.value
        )
    ).scalar_one()
    reserved = session.execute(
        select(func.coalesce(func.sum(LedgerEntry.reserved_tokens), 0)).where(
            LedgerEntry.job_id == job_id, LedgerEntry.state == LedgerState.RESERVED.value
        )
    ).scalar_one()
    return int(spent), int(reserved)


def assert_consistent(session: Session, job_id: str) -> ledger.BudgetSnapshot:
    """The job's counters equal its ledger and respect the budget."""
    snap = ledger.snapshot(session, job_id)
    assert snap.spent >= 0
    assert snap.reserved >= 0
    assert snap.spent + snap.reserved <= snap.total
    assert ledger_sums(session, job_id) == (snap.spent, snap.reserved)
    return snap


def tenant_counters(session: Session, tenant_id: str) -> tuple[int, int, list[tuple[object, int, int]]]:
    """(tokens_spent, tokens_reserved, [(day, spent, reserved)...]) of a tenant, fresh from the database."""
    tenant = session.execute(select(Tenant.tokens_spent, Tenant.tokens_reserved).where(Tenant.id == tenant_id)).one()
    days = session.execute(
        select(TenantDailyUsage.day, TenantDailyUsage.spent, TenantDailyUsage.reserved)
        .where(TenantDailyUsage.tenant_id == tenant_id)
        .order_by(TenantDailyUsage.day)
    ).all()
    return int(tenant[0]), int(tenant[1]), [(d, int(sp), int(r)) for d, sp, r in days]
