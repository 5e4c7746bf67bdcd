"""The statements of audits: create a run, add its results in batches, finish it, read it back within a scope.

Nothing here writes to ``jobs`` or ``nodes``: an audit's scores live only in its own rows (``audit_models``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from ecoalign.store.audit_models import AuditResult, AuditRun
from ecoalign.store.base import utcnow
from ecoalign.store.traces import Scope

_RESULTS = cast(Table, AuditResult.__table__)


def create_run(
    session: Session,
    *,
    tenant_id: str | None,
    evaluator: str,
    aggregate: str,
    tau: float,
    source: str,
    spec: dict[str, Any],
) -> AuditRun:
    run = AuditRun(
        tenant_id=tenant_id, evaluator=evaluator, aggregate=aggregate, tau=tau, source=source, spec=spec,
        status="running",
    )
    session.add(run)
    session.flush()
    return run


def add_results(session: Session, run_id: str, rows: Sequence[dict[str, Any]]) -> None:
    """Insert result rows (``audit.service`` builds them) in one statement."""
    if rows:
        now = utcnow()
        session.execute(_RESULTS.insert(), [{"run_id": run_id, "created_at": now, **row} for row in rows])


def finish_run(session: Session, run_id: str, status: str, summary: dict[str, Any]) -> None:
    session.execute(
        update(AuditRun).where(AuditRun.id == run_id).values(status=status, summary=summary, finished_at=utcnow())
    )


def get_run(session: Session, scope: Scope, run_id: str) -> AuditRun | None:
    """The run within the scope (None: none, or another tenant's)."""
    return session.scalars(select(AuditRun).where(AuditRun.id == run_id, *scope.on(AuditRun.tenant_id))).one_or_none()


def iter_results(session: Session, run_id: str, *, chunk: int = 500) -> Iterator[AuditResult]:
    """The run's results in position order, ``chunk`` rows per statement (constant memory)."""
    last = -1
    while True:
        rows = list(
            session.scalars(
                select(AuditResult)
                .where(AuditResult.run_id == run_id, AuditResult.position > last)
                .order_by(AuditResult.position)
                .limit(chunk)
            )
        )
        yield from rows
        if len(rows) < chunk:
            return
        last = rows[-1].position


def results_for_trace(session: Session, scope: Scope, trace_id: str, *, limit: int = 50) -> list[tuple[AuditRun, Any]]:
    """The newest audits of a stored trace within the scope: (run, result) pairs, newest first."""
    rows = session.execute(
        select(AuditRun, AuditResult)
        .join(AuditResult, AuditResult.run_id == AuditRun.id)
        .where(AuditResult.trace_id == trace_id, AuditResult.trace_kind == "job", *scope.on(AuditRun.tenant_id))
        .order_by(AuditRun.created_at.desc(), AuditRun.id.desc())
        .limit(limit)
    ).all()
    return [(run, result) for run, result in rows]
