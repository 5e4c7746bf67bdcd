"""Aggregates over the whole store for ``/metrics`` (read at scrape time: the database is the source of truth)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecoalign.store.models import Job, NodeRow


def jobs_by_status(session: Session) -> dict[str, int]:
    """Number of jobs in each status that has any."""
    return {str(status): int(n) for status, n in session.execute(select(Job.status, func.count()).group_by(Job.status))}


def job_tokens(session: Session) -> tuple[int, int]:
    """(tokens spent, tokens reserved) summed over every job."""
    spent, reserved = session.execute(
        select(func.coalesce(func.sum(Job.budget_spent), 0), func.coalesce(func.sum(Job.budget_reserved), 0))
    ).one()
    return int(spent), int(reserved)


def node_latencies(session: Session, *, since: datetime, limit: int) -> dict[str, list[float]]:
    """Claim-to-finish seconds of the nodes finished since ``since`` (at most ``limit`` rows), by node kind."""
    rows = session.execute(
        select(NodeRow.kind, NodeRow.started_at, NodeRow.finished_at)
        .where(NodeRow.finished_at >= since, NodeRow.started_at.is_not(None))
        .limit(limit)
    )
    per_kind: dict[str, list[float]] = {}
    for kind, started, finished in rows:
        if started is not None and finished is not None:
            per_kind.setdefault(kind, []).append(max((finished - started).total_seconds(), 0.0))
    return per_kind
