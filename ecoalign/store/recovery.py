"""Database side of dispatch and recovery: which nodes to enqueue now, and what the reaper must redo.

``nodes.lease_expires_at`` does double duty. On a ``running`` node it is the worker's lease (renewed while the
worker holds it). On a ``pending`` node it is a *dispatch mark*: "a message for this node was published; do not
publish another until then". The mark is what keeps the controller, which runs once per finished node, from
enqueuing every still-queued pending node again each time; if the message is lost (broker restart), the mark
runs out and the reaper publishes a new one. Claiming a pending node ignores the mark.

Lock order as in ``ecoalign.store.repository``: the job row first, then its nodes. Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, exists, or_, select, update
from sqlalchemy.orm import Session

from ecoalign.engine.graph import NodeKind, NodeStatus
from ecoalign.store import ledger, repository
from ecoalign.store.base import utcnow
from ecoalign.store.models import ACTIVE_JOB_STATUSES, Job, LedgerKind, NodeRow

NODES = cast(Table, NodeRow.__table__)
JOBS = cast(Table, Job.__table__)
PENDING = NodeStatus.PENDING.value
RUNNING = NodeStatus.RUNNING.value


@dataclass(frozen=True)
class NodeRef:
    job_id: str
    node_id: str
    is_root: bool


def _lock_active_job(session: Session, job_id: str) -> bool:
    """Lock the job row (once per transaction, shared with the repository and ledger calls that follow)."""
    job = ledger.lock_job_row(session, job_id)
    return job is not None and job.status in ACTIVE_JOB_STATUSES


def mark_dispatched(
    session: Session, job_id: str, node_ids: Sequence[str], grace_s: float, *, now: datetime | None = None
) -> list[str]:
    """Set the dispatch mark on those pending nodes that have none (or an expired one); returns them, in order."""
    if not node_ids:
        return []
    now = now or utcnow()
    _lock_active_job(session, job_id)
    marked = set(
        session.scalars(
            update(NODES)
            .where(
                NODES.c.job_id == job_id,
                NODES.c.id.in_(list(node_ids)),
                NODES.c.status == PENDING,
                or_(NODES.c.lease_expires_at.is_(None), NODES.c.lease_expires_at < now),
            )
            .values(lease_expires_at=now + timedelta(seconds=grace_s))
            .returning(NODES.c.id)
        )
    )
    return [n for n in node_ids if n in marked]


@dataclass
class Sweep:
    """What one reaper pass decided for one job."""

    enqueue: list[NodeRef]
    poisoned: list[str]


def _kind_is_root(kind: str) -> bool:
    return kind == NodeKind.ROOT.value


def expired_jobs(session: Session, *, grace_s: float, now: datetime | None = None, limit: int = 500) -> list[str]:
    """Active jobs with a running node past its lease or a pending node whose dispatch mark ran out."""
    now = now or utcnow()
    mark_expired = or_(
        NODES.c.lease_expires_at < now,
        and_(NODES.c.lease_expires_at.is_(None), NODES.c.created_at < now - timedelta(seconds=grace_s)),
    )
    rows = session.execute(
        select(NODES.c.job_id)
        .join(JOBS, JOBS.c.id == NODES.c.job_id)
        .where(
            JOBS.c.status.in_(ACTIVE_JOB_STATUSES),
            or_(
                and_(NODES.c.status == RUNNING, NODES.c.lease_expires_at < now),
                and_(NODES.c.status == PENDING, mark_expired),
            ),
        )
        .group_by(NODES.c.job_id)
        .limit(limit)
    ).scalars()
    return list(rows)


def sweep_job(
    session: Session,
    job_id: str,
    *,
    grace_s: float,
    max_attempts: int,
    max_crashes: int | None = None,
    now: datetime | None = None,
) -> Sweep:
    """Under the job's lock: fail poison nodes, hand expired running nodes back to ``pending``, re-mark lost ones.

    A running node past its lease is poison when it raised ``max_attempts`` times while running (``failures``),
    or when ``max_crashes`` of its attempts were lost to crashes (``attempts - failures``: the worker died or
    stopped renewing the lease; default: no bound of its own). A poison node is failed (it keeps the reason, its
    tokens are settled if a generation was recorded, else its reservation is refunded). Any other running node
    past its lease goes back to ``pending`` with a fresh dispatch mark (``attempts`` and ``failures`` are kept:
    the next claim counts up from them). Pending nodes whose dispatch mark ran out get a fresh one. Returns what
    to enqueue.
    """
    now = now or utcnow()
    sweep = Sweep([], [])
    if not _lock_active_job(session, job_id):
        return sweep
    mark_until = now + timedelta(seconds=grace_s)
    rows = session.execute(
        select(
            NODES.c.id, NODES.c.kind, NODES.c.status, NODES.c.attempts, NODES.c.tokens_prompt,
            NODES.c.tokens_completion, NODES.c.lease_expires_at, NODES.c.created_at, NODES.c.failures,
        )
        .where(NODES.c.job_id == job_id, NODES.c.status.in_((PENDING, RUNNING)))
        .order_by(NODES.c.created_at, NODES.c.id)
    ).all()
    for row in rows:
        if row.status == RUNNING:
            if row.lease_expires_at is None or row.lease_expires_at >= now:
                continue
            if _is_poison(row, max_attempts, max_crashes):
                _poison(session, job_id, row, max_attempts)
                sweep.poisoned.append(row.id)
                continue
            done = session.execute(
                update(NODES)
                .where(NODES.c.id == row.id, NODES.c.status == RUNNING, NODES.c.attempts == row.attempts,
                       NODES.c.lease_expires_at < now)
                .values(status=PENDING, lease_expires_at=mark_until)
            )
        else:
            deadline = row.lease_expires_at or row.created_at + timedelta(seconds=grace_s)
            if deadline >= now:
                continue
            done = session.execute(
                update(NODES)
                .where(NODES.c.id == row.id, NODES.c.status == PENDING)
                .values(lease_expires_at=mark_until)
            )
        if cast(Any, done).rowcount == 1:
            sweep.enqueue.append(NodeRef(job_id, row.id, _kind_is_root(row.kind)))
    return sweep


def _is_poison(row: Any, max_attempts: int, max_crashes: int | None) -> bool:
    crashes = int(row.attempts) - int(row.failures)
    return row.failures >= max_attempts or (max_crashes is not None and crashes >= max_crashes)


def _poison(session: Session, job_id: str, row: Any, max_attempts: int) -> None:
    spent = int(row.tokens_prompt) + int(row.tokens_completion)
    if spent:
        ledger.settle(session, job_id, row.id, LedgerKind.GENERATE, spent)
    else:
        ledger.refund(session, job_id, row.id, LedgerKind.GENERATE)
    repository.finish_node(
        session, job_id, row.id, NodeStatus.FAILED, attempt=row.attempts,
        failure_reason=(
            f"poison: gave up after {row.failures} failures while running it"
            if row.failures >= max_attempts
            else f"poison: gave up after {int(row.attempts) - int(row.failures)} attempts lost to crashes "
            "(worker lost or lease expired each time)"
        ),
    )


def stalled_jobs(session: Session, *, stall_s: float, now: datetime | None = None, limit: int = 500) -> list[str]:
    """Active jobs with no node in flight and no change for ``stall_s``: their controller run was lost."""
    now = now or utcnow()
    in_flight = exists().where(NODES.c.job_id == JOBS.c.id, NODES.c.status.in_((PENDING, RUNNING)))
    return list(
        session.scalars(
            select(JOBS.c.id)
            .where(
                JOBS.c.status.in_(ACTIVE_JOB_STATUSES),
                JOBS.c.updated_at < now - timedelta(seconds=stall_s),
                ~in_flight,
            )
            .order_by(JOBS.c.updated_at)
            .limit(limit)
        )
    )
