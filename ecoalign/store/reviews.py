"""Every statement of the human review queue: open a task, list the queue, lease a task (claim), record a verdict,
and the reads built on them (a result with its reviews, human labels for training data, metrics).

Leases are conditional UPDATEs: a claim succeeds only on a task that is pending, or claimed with an expired
lease, or already the caller's (a renewal); a decision only from the reviewer whose lease is live. One statement
each, so two reviewers racing on one task cannot both win, on Postgres or SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.store.base import utcnow
from ecoalign.store.batch_models import ModerationTrace
from ecoalign.store.db import insert_ignoring_conflicts
from ecoalign.store.pagination import Page, keyset_page
from ecoalign.store.review_models import ReviewDecision, ReviewStatus, ReviewTask

TASKS = cast(Table, ReviewTask.__table__)
DECISIONS = cast(Table, ReviewDecision.__table__)


def insert_task(session: Session, row: dict[str, Any]) -> str | None:
    """A new task (``row``: the columns of ``review_tasks``); None if the decision (``trace_id``) has one already."""
    inserted = session.execute(insert_ignoring_conflicts(session, TASKS, TASKS.c.id), [row]).first()
    return None if inserted is None else str(inserted.id)


def _in_queue(now: datetime) -> ColumnElement[bool]:
    """Pending, or claimed by a lease that expired (back in the queue)."""
    return or_(
        ReviewTask.status == ReviewStatus.PENDING.value,
        and_(ReviewTask.status == ReviewStatus.CLAIMED.value, ReviewTask.lease_expires_at < now),
    )


def status_filter(status: str, now: datetime) -> ColumnElement[bool]:
    if status == ReviewStatus.PENDING.value:
        return _in_queue(now)
    if status == ReviewStatus.CLAIMED.value:
        return and_(ReviewTask.status == status, ReviewTask.lease_expires_at >= now)
    return ReviewTask.status == status


def list_tasks(
    session: Session,
    tenant_id: str,
    *,
    status: str | None,
    category: str | None,
    policy_id: str | None,
    policy_version: int | None,
    limit: int,
    after: str | None,
    now: datetime | None = None,
) -> Page[ReviewTask]:
    """The tenant's tasks, newest first (``store.pagination``), filtered by status, category and policy."""
    filters: list[ColumnElement[bool]] = []
    if status is not None:
        filters.append(status_filter(status, now or utcnow()))
    if category is not None:
        filters.append(ReviewTask.category_tags.contains(f",{category},", autoescape=True))
    if policy_id is not None:
        filters.append(ReviewTask.policy_id == policy_id)
    if policy_version is not None:
        filters.append(ReviewTask.policy_version == policy_version)
    return keyset_page(
        session, ReviewTask, scope=[ReviewTask.tenant_id == tenant_id], filters=filters, limit=limit, after=after
    )


def get_task(session: Session, tenant_id: str, task_id: str) -> ReviewTask | None:
    return session.scalars(
        select(ReviewTask).where(ReviewTask.id == task_id, ReviewTask.tenant_id == tenant_id)
    ).one_or_none()


def claim(
    session: Session, tenant_id: str, task_id: str, reviewer: str, *, lease_s: float, now: datetime | None = None
) -> bool:
    """Lease the task to ``reviewer`` for ``lease_s``: True if this call holds it now."""
    now = now or utcnow()
    result = session.execute(
        update(ReviewTask)
        .where(
            ReviewTask.id == task_id,
            ReviewTask.tenant_id == tenant_id,
            or_(
                _in_queue(now),
                and_(ReviewTask.status == ReviewStatus.CLAIMED.value, ReviewTask.lease_owner == reviewer),
            ),
        )
        .values(
            status=ReviewStatus.CLAIMED.value,
            lease_owner=reviewer,
            lease_expires_at=now + timedelta(seconds=lease_s),
            claims=ReviewTask.claims + 1,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def decide(
    session: Session,
    tenant_id: str,
    task_id: str,
    reviewer: str,
    *,
    verdict: str,
    categories: list[str],
    note: str | None,
    now: datetime | None = None,
) -> ReviewDecision | None:
    """Settle the task with ``reviewer``'s verdict if their lease is live (else None); the verdict is a new row."""
    now = now or utcnow()
    task = session.execute(
        update(ReviewTask)
        .where(
            ReviewTask.id == task_id,
            ReviewTask.tenant_id == tenant_id,
            ReviewTask.status == ReviewStatus.CLAIMED.value,
            ReviewTask.lease_owner == reviewer,
            ReviewTask.lease_expires_at >= now,
        )
        .values(status=ReviewStatus.DECIDED.value, decided_at=now, lease_expires_at=None)
        .returning(ReviewTask.trace_id, ReviewTask.machine_flagged, ReviewTask.created_at)
        .execution_options(synchronize_session=False)
    ).first()
    if task is None:
        return None
    decision = ReviewDecision(
        task_id=task_id,
        tenant_id=tenant_id,
        trace_id=task.trace_id,
        reviewer=reviewer,
        verdict=verdict,
        categories=categories,
        note=note,
        machine_flagged=task.machine_flagged,
        seconds_to_decision=max(0.0, (now - task.created_at).total_seconds()),
        created_at=now,
    )
    session.add(decision)
    session.flush()
    return decision


def reopen(session: Session, tenant_id: str, task_id: str) -> bool:
    """A decided task back in the queue (a second opinion); its decisions stay."""
    result = session.execute(
        update(ReviewTask)
        .where(ReviewTask.id == task_id, ReviewTask.tenant_id == tenant_id,
               ReviewTask.status == ReviewStatus.DECIDED.value)
        .values(status=ReviewStatus.PENDING.value, lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def decisions_of(session: Session, tenant_id: str, *, task_id: str | None = None,
                 trace_id: str | None = None) -> list[ReviewDecision]:
    """A task's (or a machine decision's) verdicts, oldest first: its history."""
    query = select(ReviewDecision).where(ReviewDecision.tenant_id == tenant_id)
    if task_id is not None:
        query = query.where(ReviewDecision.task_id == task_id)
    if trace_id is not None:
        query = query.where(ReviewDecision.trace_id == trace_id)
    return list(session.scalars(query.order_by(ReviewDecision.created_at, ReviewDecision.id)))


def trace_of(session: Session, tenant_id: str, trace_id: str) -> ModerationTrace | None:
    return session.scalars(
        select(ModerationTrace).where(ModerationTrace.trace_id == trace_id, ModerationTrace.tenant_id == tenant_id)
    ).one_or_none()


def task_of_trace(session: Session, tenant_id: str, trace_id: str) -> ReviewTask | None:
    return session.scalars(
        select(ReviewTask).where(ReviewTask.trace_id == trace_id, ReviewTask.tenant_id == tenant_id)
    ).one_or_none()


@dataclass(frozen=True)
class LabelFilter:
    """Which decided tasks become human labels (every field optional; all given ones must hold)."""

    tenant_id: str | None = None
    policy_id: str | None = None
    created_after: datetime | None = None  # the task's creation: when the machine decided the item
    created_before: datetime | None = None


@dataclass(frozen=True)
class HumanLabel:
    """One reviewed item and its latest human verdict: a label the training-data export can use."""

    task_id: str
    tenant_id: str
    trace_id: str
    item: dict[str, Any]
    verdict: str
    categories: list[str]
    reviewer: str
    machine_flagged: bool
    machine_result: dict[str, Any]
    policy_id: str | None
    policy_version: int | None
    decided_at: datetime


def _latest_decision_id() -> Any:
    """The id of a task's latest verdict (a correlated subquery: only it counts, earlier ones are history)."""
    return (
        select(ReviewDecision.id)
        .where(ReviewDecision.task_id == ReviewTask.id)
        .order_by(ReviewDecision.created_at.desc(), ReviewDecision.id.desc())
        .limit(1)
        .correlate(ReviewTask)
        .scalar_subquery()
    )


def _label_conditions(spec: LabelFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [ReviewTask.status == ReviewStatus.DECIDED.value]
    if spec.tenant_id is not None:
        where.append(ReviewTask.tenant_id == spec.tenant_id)
    if spec.policy_id is not None:
        where.append(ReviewTask.policy_id == spec.policy_id)
    if spec.created_after is not None:
        where.append(ReviewTask.created_at >= spec.created_after)
    if spec.created_before is not None:
        where.append(ReviewTask.created_at < spec.created_before)
    return where


def human_labels(session: Session, spec: LabelFilter, *, after: str | None = None,
                 limit: int = 256) -> list[HumanLabel]:
    """One keyset page of (item, human label) pairs: decided tasks in id order after ``after``, each with its
    latest verdict (a reopened task waiting for a second opinion is not decided, so it gives none)."""
    statement = (
        select(ReviewTask, ReviewDecision)
        .join(ReviewDecision, ReviewDecision.id == _latest_decision_id())
        .where(*_label_conditions(spec))
        .order_by(ReviewTask.id)
        .limit(limit)
    )
    if after is not None:
        statement = statement.where(ReviewTask.id > after)
    return [
        HumanLabel(task.id, task.tenant_id, task.trace_id, task.item, d.verdict, list(d.categories), d.reviewer,
                   task.machine_flagged, dict(task.machine_result), task.policy_id, task.policy_version,
                   d.created_at)
        for task, d in session.execute(statement).all()
    ]


def iter_human_labels(
    factory: sessionmaker[Session], spec: LabelFilter, *, batch_size: int = 256
) -> Iterator[list[HumanLabel]]:
    """Every matching label, ``batch_size`` at a time, each batch in its own short transaction (the export's
    reads, like ``store.exports``: bounded memory, no snapshot held open)."""
    after: str | None = None
    while True:
        with factory() as session, session.begin():
            batch = human_labels(session, spec, after=after, limit=batch_size)
        if not batch:
            return
        yield batch
        if len(batch) < batch_size:
            return
        after = batch[-1].task_id


def count_human_labels(factory: sessionmaker[Session], spec: LabelFilter) -> int:
    """How many decided tasks match (for the progress bar)."""
    with factory() as session:
        return int(session.scalar(
            select(func.count()).select_from(ReviewTask).where(*_label_conditions(spec))
        ) or 0)


# -- metrics (read at scrape time by api/metrics.py) -------------------------------------------------------------
def queue_depth(session: Session, now: datetime | None = None) -> dict[str, int]:
    """Tasks in the queue (pending, incl. expired leases), leased (claimed), and decided, over every tenant."""
    now = now or utcnow()
    out = {}
    for status in ReviewStatus:
        out[status.value] = int(
            session.scalar(select(func.count()).select_from(ReviewTask).where(status_filter(status.value, now))) or 0
        )
    return out


def decision_rows(session: Session, *, limit: int) -> list[tuple[float, bool, str, list[str], dict[str, Any]]]:
    """The latest ``limit`` decisions: (seconds to decision, machine flagged, verdict, categories, machine
    categories) for the time-to-decision and agreement metrics."""
    rows = session.execute(
        select(
            ReviewDecision.seconds_to_decision, ReviewDecision.machine_flagged, ReviewDecision.verdict,
            ReviewDecision.categories, ReviewTask.machine_result,
        )
        .join(ReviewTask, ReviewTask.id == ReviewDecision.task_id)
        .order_by(ReviewDecision.created_at.desc())
        .limit(limit)
    ).all()
    return [(float(r[0]), bool(r[1]), str(r[2]), list(r[3]), dict(r[4].get("categories", {}))) for r in rows]
