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
* **All or nothing.** Under the job's lock (and the tenant's, for a tenant's job) the counters are known, so a
  reservation is checked against every budget before anything is written: it is written whole or not at all.
* **No deadlocks between ledger operations.** Every function locks rows in one order: the job row first
  (``SELECT ... FOR UPDATE``, once per transaction: ``LockedJob``), then the tenant row, then the tenant's daily
  row; a job's ledger rows are only touched under its job's lock. On SQLite
  the transaction already holds the database write lock (``BEGIN IMMEDIATE``), so the locks are no-ops there.
Postgres must run at READ COMMITTED (its default): each statement sees the rows committed before it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple, cast

from sqlalchemy import Integer, Table, and_, bindparam, case, event, select, text, update
from sqlalchemy.engine import CursorResult, Row
from sqlalchemy.orm import Session

from ecoalign.store import tenants
from ecoalign.store.base import utcnow
from ecoalign.store.db import insert_ignoring_conflicts
from ecoalign.store.models import Job, LedgerEntry, LedgerKind, LedgerState

JOBS = cast(Table, Job.__table__)
LEDGER = cast(Table, LedgerEntry.__table__)

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


@dataclass
class LockedJob:
    """The job row as this transaction holds it: locked once, its counters kept in step by the ledger's writes.

    Every writer of a job takes its row lock first (the lock order), and a transaction that finishes a node
    calls several of them: the record of the lock saves a ``SELECT ... FOR UPDATE`` per call. Only the
    functions of this module move the counters and only ``repository`` moves the status; both update this
    record as they do, so it always equals the row as this transaction sees it.
    """

    id: str
    status: str
    total: int
    spent: int
    reserved: int
    tenant_id: str | None

    @property
    def remaining(self) -> int:
        return self.total - self.spent - self.reserved


_LOCKED_JOBS = "ecoalign.locked_jobs"

# The hot path's statements, built once (building one costs several times what executing a built one does).
_LOCK_JOB = (
    select(JOBS.c.status, JOBS.c.budget_total, JOBS.c.budget_spent, JOBS.c.budget_reserved, JOBS.c.tenant_id)
    .where(JOBS.c.id == bindparam("job_id"))
    .with_for_update()
)
_ACTUAL = bindparam("actual", type_=Integer)
_CEILING = LEDGER.c.reserved_tokens + bindparam("room", type_=Integer)
_CHARGE = case((_CEILING >= _ACTUAL, _ACTUAL), else_=_CEILING)
_SETTLE_RESERVED = (
    update(LEDGER)
    .where(
        LEDGER.c.job_id == bindparam("b_job"),
        LEDGER.c.node_id == bindparam("b_key"),
        LEDGER.c.kind == bindparam("b_kind"),
        LEDGER.c.state == RESERVED,
    )
    .values(state=SETTLED, spent_tokens=_CHARGE, overrun_tokens=_ACTUAL - _CHARGE, settled_at=bindparam("b_now"))
    .returning(LEDGER.c.reserved_tokens, LEDGER.c.spent_tokens)
)
_HELD = bindparam("held", type_=Integer)
_CHARGED = bindparam("charge", type_=Integer)
_MOVE_JOB = (
    update(JOBS)
    .where(
        JOBS.c.id == bindparam("b_job"),
        JOBS.c.budget_reserved >= _HELD,
        JOBS.c.budget_spent + JOBS.c.budget_reserved - _HELD + _CHARGED <= JOBS.c.budget_total,
    )
    .values(
        budget_reserved=JOBS.c.budget_reserved - _HELD,
        budget_spent=JOBS.c.budget_spent + _CHARGED,
        model_calls=JOBS.c.model_calls + bindparam("calls", type_=Integer),
    )
)
# Postgres: ``_SETTLE_RESERVED`` and ``_MOVE_JOB`` in one round trip (the entry's update as a data-modifying CTE);
# ``moved`` is 0 if the job's counters refused the move (the caller raises, rolling the entry back too).
_SETTLE_RESERVED_AND_MOVE = text(
    f"""
    WITH entry AS (
        UPDATE ledger_entries SET state = '{SETTLED}',
            spent_tokens = CASE WHEN reserved_tokens + :room >= :actual THEN :actual ELSE reserved_tokens + :room END,
            overrun_tokens = :actual
                - CASE WHEN reserved_tokens + :room >= :actual THEN :actual ELSE reserved_tokens + :room END,
            settled_at = :b_now
        WHERE job_id = :b_job AND node_id = :b_key AND kind = :b_kind AND state = '{RESERVED}'
        RETURNING reserved_tokens AS held, spent_tokens AS charged
    ), moved AS (
        UPDATE jobs SET budget_reserved = jobs.budget_reserved - entry.held,
            budget_spent = jobs.budget_spent + entry.charged, model_calls = jobs.model_calls + :calls
        FROM entry
        WHERE jobs.id = :b_job AND jobs.budget_reserved >= entry.held
            AND jobs.budget_spent + jobs.budget_reserved - entry.held + entry.charged <= jobs.budget_total
        RETURNING jobs.id
    )
    SELECT entry.held, entry.charged, (SELECT count(*) FROM moved) AS moved FROM entry
    """  # noqa: S608 -- only module constants (the entry states) are interpolated; inputs are bound
).bindparams(bindparam("b_now", type_=LEDGER.c.settled_at.type))
_TOKENS = bindparam("tokens", type_=Integer)
_HOLD_JOB = (
    update(JOBS)
    .where(
        JOBS.c.id == bindparam("b_job"), JOBS.c.budget_spent + JOBS.c.budget_reserved + _TOKENS <= JOBS.c.budget_total
    )
    .values(budget_reserved=JOBS.c.budget_reserved + _TOKENS)
)


def held_job_row(session: Session, job_id: str) -> LockedJob | None:
    """The job row as this transaction locked it, or None if it has not locked it (takes no lock)."""
    held: dict[str, LockedJob] | None = session.info.get(_LOCKED_JOBS)
    return held.get(job_id) if held is not None else None


def lock_job_row(session: Session, job_id: str) -> LockedJob | None:
    """Lock the job row (first in the lock order) once per transaction; None if there is no such job."""
    job = held_job_row(session, job_id)
    if job is not None:
        return job
    row = session.execute(_LOCK_JOB, {"job_id": job_id}).first()
    if row is None:
        return None
    job = LockedJob(job_id, str(row.status), int(row.budget_total), int(row.budget_spent),
                    int(row.budget_reserved), row.tenant_id)
    session.info.setdefault(_LOCKED_JOBS, {})[job_id] = job
    return job


@event.listens_for(Session, "after_transaction_end")
def _forget_locks(session: Session, _transaction: Any) -> None:
    """A lock lives as long as its transaction (and a savepoint rolled back may release it: forget those too)."""
    session.info.pop(_LOCKED_JOBS, None)


def _lock_job(session: Session, job_id: str) -> LockedJob:
    job = lock_job_row(session, job_id)
    if job is None:
        raise LedgerError(f"no job {job_id}")
    return job


def _entry_key(job_id: str, key: str, kind: str) -> Any:
    return and_(LEDGER.c.job_id == job_id, LEDGER.c.node_id == key, LEDGER.c.kind == kind)


def _lock_entry(session: Session, job_id: str, key: str, kind: str) -> Row[Any, Any, Any, Any, Any, Any] | None:
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
def _tenant_of(job: LockedJob, tenant_id: str | None) -> str | None:
    """The tenant to charge: always the job's own (a caller cannot charge, or skip, another tenant)."""
    if tenant_id is not None and tenant_id != job.tenant_id:
        raise LedgerError(f"tenant {tenant_id} is not the tenant of this job ({job.tenant_id})")
    return job.tenant_id


def _insert_entry(
    session: Session, job_id: str, key: str, kind: str, tokens: int, tenant_id: str | None, day: date | None
) -> bool:
    """Create the ledger row in state ``reserved``; False if the key already exists."""
    return bool(_insert_entries(session, job_id, [(key, kind, tokens)], tenant_id, day))


def _insert_entries(
    session: Session,
    job_id: str,
    rows: Sequence[tuple[str, str, int]],
    tenant_id: str | None,
    day: date | None,
) -> set[tuple[str, str]]:
    """Create ledger rows in state ``reserved`` (one statement); returns the ``(key, kind)`` pairs that were new."""
    if not rows:
        return set()
    now = utcnow()
    budget_day = (day or now.date()) if tenant_id is not None else None
    values = [
        {
            "job_id": job_id,
            "node_id": key,
            "kind": kind,
            "state": RESERVED,
            "reserved_tokens": tokens,
            "spent_tokens": 0,
            "overrun_tokens": 0,
            "tenant_id": tenant_id,
            "budget_day": budget_day,
            "created_at": now,
        }
        for key, kind, tokens in rows
    ]
    statement = insert_ignoring_conflicts(session, LEDGER, LEDGER.c.node_id, LEDGER.c.kind)
    inserted = session.execute(statement, values).all()  # executemany: one statement for any batch size
    return {(str(r[0]), str(r[1])) for r in inserted}


class _Room:
    """What a batch of reservations may still take: the job's room, and the tenant's total and daily rooms."""

    def __init__(self, session: Session, job: LockedJob, tenant: str | None, day: date | None) -> None:
        self.job = job.remaining
        self.tenant_total: int | None = None
        self.tenant_daily: int | None = None
        if tenant is None:
            return
        assert day is not None  # noqa: S101 -- type narrowing of an invariant, not an input check
        counters = tenants.lock_counters(session, tenant, day)
        if counters is None:
            raise LedgerError(f"no tenant {tenant}")
        if counters.budget_total is not None:
            self.tenant_total = counters.budget_total - counters.spent - counters.reserved
        if counters.budget_daily is not None:
            self.tenant_daily = counters.budget_daily - counters.day_spent - counters.day_reserved

    def take(self, tokens: int) -> bool:
        rooms = [r for r in (self.job, self.tenant_total, self.tenant_daily) if r is not None]
        if any(tokens > r for r in rooms):
            return False
        self.job -= tokens
        if self.tenant_total is not None:
            self.tenant_total -= tokens
        if self.tenant_daily is not None:
            self.tenant_daily -= tokens
        return True

    def give_back(self, tokens: int) -> None:
        self.take(-tokens)


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
    return reserve_many(session, job_id, [(key, kind, tokens)], tenant_id, day=day)[0]


def reserve_many(
    session: Session,
    job_id: str,
    calls: Sequence[tuple[str, LedgerKind | str, int]],
    tenant_id: str | None = None,
    *,
    day: date | None = None,
) -> list[bool]:
    """``reserve`` for several calls at once, in order, as if one after the other; one answer per call.

    Under the job's lock the counters are known, so which reservations fit is decided here and written with one
    ``INSERT`` of the ledger rows and one conditional ``UPDATE`` per counter row (no savepoint, no statement
    per call). A call whose key already exists is answered as ``reserve`` answers it and takes no room.
    """
    if any(tokens < 0 for _, _, tokens in calls):
        raise ValueError("tokens must be >= 0")
    if not calls:
        return []
    wanted = [(key, _kind(kind), int(tokens)) for key, kind, tokens in calls]
    job = _lock_job(session, job_id)
    tenant = _tenant_of(job, tenant_id)
    budget_day = (day or utcnow().date()) if tenant is not None else None
    room = _Room(session, job, tenant, budget_day)
    answers: dict[int, bool] = {}
    todo = list(range(len(wanted)))
    taken = 0
    while todo:
        fits = [i for i in todo if room.take(wanted[i][2])]
        new = _insert_entries(session, job_id, [wanted[i] for i in fits], tenant, budget_day)
        existing = [i for i in fits if wanted[i][:2] not in new]
        for i in fits:
            if i not in existing:
                answers[i] = True
                taken += wanted[i][2]
        for i in existing:  # a redelivered call: it keeps what it has and takes no room
            room.give_back(wanted[i][2])
            state = session.execute(
                select(LEDGER.c.state).where(_entry_key(job_id, wanted[i][0], wanted[i][1]))
            ).scalar_one()
            answers[i] = state in (RESERVED, SETTLED)
        todo = [i for i in todo if i not in answers]
        if not existing:  # nothing gave room back: the rest cannot fit
            break
    if todo:  # did not fit: unless the key exists already (a redelivered call), the answer is no
        states = {
            (str(r.node_id), str(r.kind)): r.state
            for r in session.execute(
                select(LEDGER.c.node_id, LEDGER.c.kind, LEDGER.c.state).where(
                    LEDGER.c.job_id == job_id, LEDGER.c.node_id.in_({wanted[i][0] for i in todo})
                )
            )
        }
        for i in todo:
            answers[i] = states.get(wanted[i][:2]) in (RESERVED, SETTLED)
    if taken:
        _hold(session, job, tenant, budget_day, taken)
    return [answers[i] for i in range(len(wanted))]


def _hold(session: Session, job: LockedJob, tenant: str | None, day: date | None, tokens: int) -> None:
    """Move ``tokens`` into ``reserved`` on the job (and its tenant and tenant day), guarded by the budgets."""
    done = session.execute(_HOLD_JOB, {"b_job": job.id, "tokens": tokens})
    if _rowcount(done) != 1:
        raise LedgerError(f"job {job.id} counters out of step with its ledger")
    job.reserved += tokens
    if tenant is not None:
        assert day is not None  # noqa: S101 -- type narrowing of an invariant, not an input check
        if not tenants.reserve_tenant(session, tenant, day, tokens):
            raise LedgerError(f"tenant {tenant} counters out of step with the ledger")


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
    if job.tenant_id is None:
        charged = _settle_reserved(session, job, key, kind_, actual_tokens, calls)
        if charged is not None:
            return charged
    entry = _lock_entry(session, job_id, key, kind_)
    if entry is None:
        _insert_entry(session, job_id, key, kind_, 0, _tenant_of(job, None), day)
        entry = _lock_entry(session, job_id, key, kind_)
        assert entry is not None  # noqa: S101 -- type narrowing of an invariant, not an input check
    if entry.state == SETTLED:
        return int(entry.spent_tokens)

    held = int(entry.reserved_tokens) if entry.state == RESERVED else 0
    charge = min(actual_tokens, job.total - job.spent - (job.reserved - held))
    tenant_id: str | None = entry.tenant_id
    budget_day: date | None = entry.budget_day
    if tenant_id is not None:
        assert budget_day is not None  # noqa: S101 -- type narrowing of an invariant, not an input check
        tenant = tenants.lock_counters(session, tenant_id, budget_day)
        if tenant is None:
            raise LedgerError(f"no tenant {tenant_id}")
        charge = tenants.capped_charge(charge, tenant, held, held)
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


def _settle_reserved(
    session: Session, job: LockedJob, key: str, kind: str, actual_tokens: int, calls: int
) -> int | None:
    """``settle`` for the common case, a reservation of a job with no tenant: one statement on Postgres, two
    elsewhere.

    The charge (``min(actual, room + held)``, as ``settle`` computes it) is written by the conditional
    ``UPDATE`` of the entry itself, which returns what it held; None if the entry is not ``reserved`` (missing,
    settled or refunded), which ``settle``'s general path handles.
    """
    params = {"b_job": job.id, "b_key": key, "b_kind": kind, "room": job.remaining, "actual": actual_tokens,
              "b_now": utcnow()}
    if session.get_bind().dialect.name != "postgresql":
        row = session.execute(_SETTLE_RESERVED, params).first()
        if row is None:
            return None
        held, charged = int(row[0]), int(row[1])
        _move_counters(session, job.id, None, None, held=held, charge=charged, calls=calls)
        return charged
    row = session.execute(_SETTLE_RESERVED_AND_MOVE, {**params, "calls": calls}).first()
    if row is None:
        return None
    if row.moved != 1:
        raise LedgerError(f"job {job.id} counters out of step with its ledger")
    held, charged = int(row.held), int(row.charged)
    job.reserved -= held
    job.spent += charged
    return charged


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
    job = _lock_job(session, job_id)
    done = session.execute(_MOVE_JOB, {"b_job": job_id, "held": held, "charge": charge, "calls": calls})
    if _rowcount(done) != 1:
        raise LedgerError(f"job {job_id} counters out of step with its ledger")
    job.reserved -= held
    job.spent += charge
    if tenant_id is None:
        return
    assert day is not None  # noqa: S101 -- type narrowing of an invariant, not an input check
    if not tenants.move_total(session, tenant_id, held=held, charge=charge):
        raise LedgerError(f"tenant {tenant_id} counters out of step with the ledger")
    if not tenants.move_day(session, tenant_id, day, held=held, charge=charge):
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
    job = _lock_job(session, job_id)
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
    job.reserved -= released
    for tenant_id in sorted(per_tenant):  # lock order: tenants, then their daily rows, each sorted
        if not tenants.move_total(session, tenant_id, held=per_tenant[tenant_id], charge=0):
            raise LedgerError(f"tenant {tenant_id} counters out of step with the ledger")
    for (tenant_id, day), amount in sorted(per_day.items()):
        if not tenants.move_day(session, tenant_id, day, held=amount, charge=0):
            raise LedgerError(f"tenant {tenant_id} daily counters for {day} out of step with the ledger")
    return released


# -- reading ----------------------------------------------------------------------------------------------------
def snapshot(session: Session, job_id: str) -> BudgetSnapshot:
    """The job's ``(total, spent, reserved)``: as this transaction holds them if it locked the job, else as
    committed (no lock)."""
    job = held_job_row(session, job_id)
    if job is not None:
        return BudgetSnapshot(job.total, job.spent, job.reserved)
    row = session.execute(
        select(JOBS.c.budget_total, JOBS.c.budget_spent, JOBS.c.budget_reserved).where(JOBS.c.id == job_id)
    ).first()
    if row is None:
        raise LedgerError(f"no job {job_id}")
    return BudgetSnapshot(int(row[0]), int(row[1]), int(row[2]))


def entries(session: Session, job_id: str) -> list[LedgerEntry]:
    """The job's ledger entries in creation order (for traces, audits and tests)."""
    return list(session.scalars(select(LedgerEntry).where(LedgerEntry.job_id == job_id).order_by(LedgerEntry.id)))


def entry_settled(session: Session, job_id: str, key: str, kind: LedgerKind | str) -> bool:
    """Whether the call ``(job_id, key, kind)`` is settled already (under the job's lock, as ``settle`` takes it)."""
    _lock_job(session, job_id)
    state = session.execute(select(LEDGER.c.state).where(_entry_key(job_id, key, _kind(kind)))).scalar()
    return state == SETTLED
