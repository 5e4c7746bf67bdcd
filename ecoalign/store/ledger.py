"""The budget ledger: exact token accounting that survives redelivery, retries and concurrency.

Protocol for every model call: ``reserve`` its estimated cost under a key → make the call → ``settle`` the real
cost from the server's ``usage`` (or ``refund`` if no call was made). A key is ``(job_id, key, kind)``; one key is
one call, and the ledger row under it is created at most once and moves ``reserved → settled`` or
``reserved → refunded`` (and ``refunded → settled`` for a call that finished after its job was cancelled: its
tokens were really spent). Each function takes the caller's ``Session`` and never commits: the caller decides
the transaction, so a ledger change commits together with the state change it pays for.

Why it is safe:
* **Idempotent.** The unique key makes a redelivered ``reserve`` find its own row instead of charging again;
  state transitions are conditional (``WHERE state = 'reserved'``), so a redelivered ``settle`` or ``refund``
  changes nothing and returns what the first one did.
* **Never over budget.** Counters move only by conditional ``UPDATE``s (``... WHERE spent + reserved + :t <=
  total``), so two workers racing for the last tokens cannot both win; a CHECK constraint on ``jobs`` and
  ``tenants`` is the last line of defence. A call that cost more than reserved is charged only as far as the
  budget allows and the rest is recorded as ``overrun_tokens`` (visible, never silently lost).
* **All or nothing.** A reservation that fails anywhere (job, tenant total, tenant daily) is rolled back to a
  savepoint: no row, no counter moved.
* **No deadlocks between ledger operations.** Every function locks rows in one order: the job row first
  (``SELECT ... FOR UPDATE``), then ledger rows, then the tenant row, then the tenant's daily row. On SQLite
  the transaction already holds the database write lock (``BEGIN IMMEDIATE``), so the locks are no-ops there.
Postgres must run at READ COMMITTED (its default): each statement sees the rows committed before it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, and_, or_, select, update
from sqlalchemy.engine import CursorResult, Row
from sqlalchemy.orm import Session

from ecoalign.store.db import dialect_insert
from ecoalign.store.models import Job, LedgerEntry, LedgerKind, LedgerState, Tenant, TenantDailyUsage, utcnow

JOBS = cast(Table, Job.__table__)
LEDGER = cast(Table, LedgerEntry.__table__)
TENANTS = cast(Table, Tenant.__table__)
DAILY = cast(Table, TenantDailyUsage.__table__)

RESERVED = LedgerState.RESERVED.value
SETTLED = LedgerState.SETTLED.value
REFUNDED = LedgerState.REFUNDED.value


class LedgerError(RuntimeError):
    """A ledger operation on something that does not exist, or a broken invariant (a bug, not a budget)."""


class BudgetSnapshot(NamedTuple):
    total: int
    spent: int
    reserved: int

    @property
    def remaining(self) -> int:
        """Tokens neither spent nor promised: what a new reservation may take."""
        return self.total - self.spent - self.reserved


def _rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


def _kind(kind: LedgerKind | str) -> str:
    return LedgerKind(kind).value  # ValueError on an unknown kind


def _lock_job(session: Session, job_id: str) -> Row[Any]:
    """Lock the job row (first in the lock order) and read its counters."""
    row = session.execute(
        select(JOBS.c.budget_total, JOBS.c.budget_spent, JOBS.c.budget_reserved, JOBS.c.tenant_id)
        .where(JOBS.c.id == job_id)
        .with_for_update()
    ).first()
    if row is None:
        raise LedgerError(f"no job {job_id}")
    return row


def _entry_key(job_id: str, key: str, kind: str) -> Any:
    return and_(LEDGER.c.job_id == job_id, LEDGER.c.node_id == key, LEDGER.c.kind == kind)


def _lock_entry(session: Session, job_id: str, key: str, kind: str) -> Row[Any] | None:
    return session.execute(
        select(
            LEDGER.c.id,
            LEDGER.c.state,
            LEDGER.c.reserved_tokens,
            LEDGER.c.spent_tokens,
            LEDGER.c.tenant_id,
            LEDGER.c.budget_day,
        )
        .where(_entry_key(job_id, key, kind))
        .with_for_update()
    ).first()


# -- reserve ----------------------------------------------------------------------------------------------------
def _tenant_of(job: Row[Any], tenant_id: str | None) -> str | None:
    """The tenant to charge: always the job's own (a caller cannot charge, or skip, another tenant)."""
    if tenant_id is not None and tenant_id != job.tenant_id:
        raise LedgerError(f"tenant {tenant_id} is not the tenant of this job ({job.tenant_id})")
    return cast(str | None, job.tenant_id)


def _insert_entry(
    session: Session, job_id: str, key: str, kind: str, tokens: int, tenant_id: str | None, day: date | None
) -> bool:
    """Create the ledger row in state ``reserved``; False if the key already exists."""
    inserted = session.execute(
        dialect_insert(session, LEDGER)
        .values(
            job_id=job_id,
            node_id=key,
            kind=kind,
            state=RESERVED,
            reserved_tokens=tokens,
            spent_tokens=0,
            overrun_tokens=0,
            tenant_id=tenant_id,
            budget_day=(day or utcnow().date()) if tenant_id is not None else None,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing()
        .returning(LEDGER.c.id)
    ).first()
    return inserted is not None


def reserve(
    session: Session,
    job_id: str,
    key: str,
    kind: LedgerKind | str,
    tokens: int,
    tenant_id: str | None = None,
    *,
    day: date | None = None,
) -> bool:
    """Reserve ``tokens`` for the call ``(job_id, key, kind)``; False if the budget cannot cover it.

    Redelivery: if the key already exists nothing is charged and the answer is whether it holds (or held) a
    reservation: True for ``reserved``/``settled``, False for ``refunded`` (a key is single-use; a retry of a
    call that was refunded needs a new key). A job that belongs to a tenant also reserves in the tenant's total
    and daily (``day``, default today UTC) budgets in the same step; if any of the three cannot cover it,
    nothing is reserved anywhere. ``tenant_id`` may be passed as a check: it must be the job's tenant.
    """
    if tokens < 0:
        raise ValueError("tokens must be >= 0")
    kind_ = _kind(kind)
    job = _lock_job(session, job_id)
    tenant = _tenant_of(job, tenant_id)
    existing = session.execute(select(LEDGER.c.state).where(_entry_key(job_id, key, kind_))).scalar_one_or_none()
    if existing is not None:
        return existing in (RESERVED, SETTLED)

    budget_day = (day or utcnow().date()) if tenant is not None else None
    savepoint = session.begin_nested()
    try:
        if not _insert_entry(session, job_id, key, kind_, tokens, tenant, budget_day):
            # cannot happen while we hold the job lock (every ledger call takes it first); be safe anyway
            savepoint.rollback()
            state = session.execute(select(LEDGER.c.state).where(_entry_key(job_id, key, kind_))).scalar_one()
            return state in (RESERVED, SETTLED)
        done = session.execute(
            update(JOBS)
            .where(JOBS.c.id == job_id, JOBS.c.budget_spent + JOBS.c.budget_reserved + tokens <= JOBS.c.budget_total)
            .values(budget_reserved=JOBS.c.budget_reserved + tokens)
        )
        ok = _rowcount(done) == 1
        if ok and tenant is not None:
            assert budget_day is not None
            ok = reserve_tenant(session, tenant, budget_day, tokens)
        if ok:
            savepoint.commit()
        else:
            savepoint.rollback()
        return ok
    except BaseException:
        if savepoint.is_active:
            savepoint.rollback()
        raise


def reserve_tenant(session: Session, tenant_id: str, day: date, tokens: int) -> bool:
    """Hold ``tokens`` on the tenant's total then daily counters; False if either cannot cover them (the caller
    rolls back to its savepoint, since the total may already have moved)."""
    row = session.execute(
        update(TENANTS)
        .where(
            TENANTS.c.id == tenant_id,
            or_(
                TENANTS.c.token_budget_total.is_(None),
                TENANTS.c.tokens_spent + TENANTS.c.tokens_reserved + tokens <= TENANTS.c.token_budget_total,
            ),
        )
        .values(tokens_reserved=TENANTS.c.tokens_reserved + tokens)
        .returning(TENANTS.c.token_budget_daily)
    ).first()
    if row is None:
        return False
    daily_budget: int | None = row[0]
    ensure_daily_row(session, tenant_id, day)
    conditions = [DAILY.c.tenant_id == tenant_id, DAILY.c.day == day]
    if daily_budget is not None:
        conditions.append(DAILY.c.spent + DAILY.c.reserved + tokens <= daily_budget)
    done = session.execute(update(DAILY).where(*conditions).values(reserved=DAILY.c.reserved + tokens))
    return _rowcount(done) == 1


def ensure_daily_row(session: Session, tenant_id: str, day: date) -> None:
    session.execute(
        dialect_insert(session, DAILY)
        .values(tenant_id=tenant_id, day=day, spent=0, reserved=0)
        .on_conflict_do_nothing()
    )


# -- settle -----------------------------------------------------------------------------------------------------
def settle(
    session: Session,
    job_id: str,
    key: str,
    kind: LedgerKind | str,
    actual_tokens: int,
    *,
    calls: int = 1,
    day: date | None = None,
) -> int:
    """Record the real cost of the call ``(job_id, key, kind)``; returns the tokens charged to the budget.

    The reservation is released and ``actual_tokens`` charged, but never beyond what the job (and tenant, and
    tenant day) budget allows: the excess goes to ``overrun_tokens``. ``calls`` is added to ``jobs.model_calls``
    (the settle happens exactly once per key, so the count is exact). Redelivery: an already settled key returns
    its earlier charge and changes nothing. A refunded key (released by cancel/finish while its call was still
    in flight) is settled late: its tokens are charged as far as the budget allows, since they were spent.
    A key that was never reserved is charged the same way (a post-paid call, e.g. a scan whose cost is known
    only afterwards): the row is created with ``reserved_tokens = 0`` (tenant day: ``day``, default today UTC).
    """
    if actual_tokens < 0:
        raise ValueError("actual_tokens must be >= 0")
    kind_ = _kind(kind)
    job = _lock_job(session, job_id)
    entry = _lock_entry(session, job_id, key, kind_)
    if entry is None:
        _insert_entry(session, job_id, key, kind_, 0, _tenant_of(job, None), day)
        entry = _lock_entry(session, job_id, key, kind_)
        assert entry is not None
    if entry.state == SETTLED:
        return int(entry.spent_tokens)

    held = int(entry.reserved_tokens) if entry.state == RESERVED else 0
    charge = min(actual_tokens, job.budget_total - job.budget_spent - (job.budget_reserved - held))
    tenant_id: str | None = entry.tenant_id
    budget_day: date | None = entry.budget_day
    if tenant_id is not None:
        assert budget_day is not None
        tenant = session.execute(
            select(
                TENANTS.c.token_budget_total,
                TENANTS.c.token_budget_daily,
                TENANTS.c.tokens_spent,
                TENANTS.c.tokens_reserved,
            )
            .where(TENANTS.c.id == tenant_id)
            .with_for_update()
        ).first()
        if tenant is None:
            raise LedgerError(f"no tenant {tenant_id}")
        if tenant.token_budget_total is not None:
            charge = min(charge, tenant.token_budget_total - tenant.tokens_spent - (tenant.tokens_reserved - held))
        ensure_daily_row(session, tenant_id, budget_day)
        daily = session.execute(
            select(DAILY.c.spent, DAILY.c.reserved)
            .where(DAILY.c.tenant_id == tenant_id, DAILY.c.day == budget_day)
            .with_for_update()
        ).one()
        if tenant.token_budget_daily is not None:
            charge = min(charge, tenant.token_budget_daily - daily.spent - (daily.reserved - held))
    charge = max(int(charge), 0)

    moved = session.execute(
        update(LEDGER)
        .where(LEDGER.c.id == entry.id, LEDGER.c.state == entry.state)
        .values(state=SETTLED, spent_tokens=charge, overrun_tokens=actual_tokens - charge, settled_at=utcnow())
    )
    if _rowcount(moved) != 1:
        raise LedgerError(f"ledger entry {entry.id} changed under its lock")
    _move_counters(session, job_id, tenant_id, budget_day, held=held, charge=charge, calls=calls)
    return charge


def _move_counters(
    session: Session,
    job_id: str,
    tenant_id: str | None,
    day: date | None,
    *,
    held: int,
    charge: int,
    calls: int = 0,
) -> None:
    """Release ``held`` reserved tokens and add ``charge`` spent ones on the job, tenant and tenant day.

    Each UPDATE is conditional on the invariant it must keep; zero rows means someone bypassed the ledger.
    """
    job_values: dict[str, Any] = {
        "budget_reserved": JOBS.c.budget_reserved - held,
        "budget_spent": JOBS.c.budget_spent + charge,
    }
    if calls:
        job_values["model_calls"] = JOBS.c.model_calls + calls
    done = session.execute(
        update(JOBS)
        .where(
            JOBS.c.id == job_id,
            JOBS.c.budget_reserved >= held,
            JOBS.c.budget_spent + JOBS.c.budget_reserved - held + charge <= JOBS.c.budget_total,
        )
        .values(**job_values)
    )
    if _rowcount(done) != 1:
        raise LedgerError(f"job {job_id} counters out of step with its ledger")
    if tenant_id is None:
        return
    done = session.execute(
        update(TENANTS)
        .where(
            TENANTS.c.id == tenant_id,
            TENANTS.c.tokens_reserved >= held,
            or_(
                TENANTS.c.token_budget_total.is_(None),
                TENANTS.c.tokens_spent + TENANTS.c.tokens_reserved - held + charge <= TENANTS.c.token_budget_total,
            ),
        )
        .values(tokens_reserved=TENANTS.c.tokens_reserved - held, tokens_spent=TENANTS.c.tokens_spent + charge)
    )
    if _rowcount(done) != 1:
        raise LedgerError(f"tenant {tenant_id} counters out of step with the ledger")
    done = session.execute(
        update(DAILY)
        .where(DAILY.c.tenant_id == tenant_id, DAILY.c.day == day, DAILY.c.reserved >= held)
        .values(reserved=DAILY.c.reserved - held, spent=DAILY.c.spent + charge)
    )
    if _rowcount(done) != 1:
        raise LedgerError(f"tenant {tenant_id} daily counters for {day} out of step with the ledger")


# -- refund -----------------------------------------------------------------------------------------------------
def refund(session: Session, job_id: str, key: str, kind: LedgerKind | str) -> bool:
    """Release the reservation of a call that was not made. True if this call released it (idempotent)."""
    kind_ = _kind(kind)
    _lock_job(session, job_id)
    entry = _lock_entry(session, job_id, key, kind_)
    if entry is None or entry.state != RESERVED:
        return False
    moved = session.execute(
        update(LEDGER)
        .where(LEDGER.c.id == entry.id, LEDGER.c.state == RESERVED)
        .values(state=REFUNDED, settled_at=utcnow())
    )
    if _rowcount(moved) != 1:
        raise LedgerError(f"ledger entry {entry.id} changed under its lock")
    _move_counters(session, job_id, entry.tenant_id, entry.budget_day, held=int(entry.reserved_tokens), charge=0)
    return True


def release_all(session: Session, job_id: str) -> int:
    """Refund every still-reserved entry of a job (cancel, finish); returns the tokens released."""
    _lock_job(session, job_id)
    rows = session.execute(
        select(LEDGER.c.id, LEDGER.c.reserved_tokens, LEDGER.c.tenant_id, LEDGER.c.budget_day)
        .where(LEDGER.c.job_id == job_id, LEDGER.c.state == RESERVED)
        .order_by(LEDGER.c.id)
        .with_for_update()
    ).all()
    if not rows:
        return 0
    moved = session.execute(
        update(LEDGER)
        .where(LEDGER.c.id.in_([r.id for r in rows]), LEDGER.c.state == RESERVED)
        .values(state=REFUNDED, settled_at=utcnow())
    )
    if _rowcount(moved) != len(rows):
        raise LedgerError(f"ledger entries of job {job_id} changed under their locks")
    released = sum(int(r.reserved_tokens) for r in rows)
    per_tenant: dict[str, int] = defaultdict(int)
    per_day: dict[tuple[str, date], int] = defaultdict(int)
    for r in rows:
        if r.tenant_id is not None:
            per_tenant[r.tenant_id] += int(r.reserved_tokens)
            per_day[(r.tenant_id, r.budget_day)] += int(r.reserved_tokens)
    done = session.execute(
        update(JOBS)
        .where(JOBS.c.id == job_id, JOBS.c.budget_reserved >= released)
        .values(budget_reserved=JOBS.c.budget_reserved - released)
    )
    if _rowcount(done) != 1:
        raise LedgerError(f"job {job_id} counters out of step with its ledger")
    for tenant_id in sorted(per_tenant):  # lock order: tenants, then their daily rows, each sorted
        amount = per_tenant[tenant_id]
        done = session.execute(
            update(TENANTS)
            .where(TENANTS.c.id == tenant_id, TENANTS.c.tokens_reserved >= amount)
            .values(tokens_reserved=TENANTS.c.tokens_reserved - amount)
        )
        if _rowcount(done) != 1:
            raise LedgerError(f"tenant {tenant_id} counters out of step with the ledger")
    for (tenant_id, day), amount in sorted(per_day.items()):
        done = session.execute(
            update(DAILY)
            .where(DAILY.c.tenant_id == tenant_id, DAILY.c.day == day, DAILY.c.reserved >= amount)
            .values(reserved=DAILY.c.reserved - amount)
        )
        if _rowcount(done) != 1:
            raise LedgerError(f"tenant {tenant_id} daily counters for {day} out of step with the ledger")
    return released


# -- reading ----------------------------------------------------------------------------------------------------
def snapshot(session: Session, job_id: str) -> BudgetSnapshot:
    """The job's ``(total, spent, reserved)`` as committed (no lock)."""
    row = session.execute(
        select(JOBS.c.budget_total, JOBS.c.budget_spent, JOBS.c.budget_reserved).where(JOBS.c.id == job_id)
    ).first()
    if row is None:
        raise LedgerError(f"no job {job_id}")
    return BudgetSnapshot(int(row[0]), int(row[1]), int(row[2]))


def entries(session: Session, job_id: str) -> list[LedgerEntry]:
    """The job's ledger entries in creation order (for traces, audits and tests)."""
    return list(session.scalars(select(LedgerEntry).where(LedgerEntry.job_id == job_id).order_by(LedgerEntry.id)))
