"""The trace query: every stored trace of a tenant, alignment jobs and moderation decisions, as one keyset list.

A trace is one of two stored things, each read where it already lives (no copy):

* ``kind = "job"``: an alignment job (``jobs`` with its thought graph in ``nodes``/``edges``); its decision is
  ``answered``/``refused``, its path safety the job's ``S(P)``, its strategy the job's.
* ``kind = "moderation"``: a moderation decision (``moderation_traces``); its decision is the moderation path
  (``scan:safe``...), its path safety the scan's weakest segment, no strategy.

The list is a ``UNION ALL`` of both, scoped to the tenant inside each branch, paged by the project's one keyset
scheme (``pagination.keyset_page``, newest first on ``(created_at, id)``); the filters that need each table's own
columns (category, evaluator) are ``id IN (...)`` of that table.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement, Float, String, Table, and_, exists, literal, or_, select, union_all
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from ecoalign.store.batch_models import ModerationTrace
from ecoalign.store.models import Job, NodeRow
from ecoalign.store.pagination import Page, keyset_page

TraceKind = Literal["job", "moderation"]
TRACE_KINDS: tuple[TraceKind, ...] = ("job", "moderation")
CATEGORY_THRESHOLD = 0.5  # a trace "has" a category when some score of it reaches this
_JOBS = cast(Table, Job.__table__)
_NODES = cast(Table, NodeRow.__table__)
_MODERATION = cast(Table, ModerationTrace.__table__)


@dataclass(frozen=True)
class TraceFilter:
    """What ``GET /v1/traces`` and ``ecoalign audit --jobs`` select by (every field optional, all must hold).

    ``evaluator`` matches when it is part of an evaluator id that scored the trace (a node's, the scan's, a
    moderation judge's): ``judge:`` matches every judge. ``category`` is an OpenAI moderation category that some
    score of the trace (the scan's, a node's, the moderation result's) puts at ``CATEGORY_THRESHOLD`` or above.
    """

    kind: TraceKind | None = None
    decision: str | None = None
    min_path_safety: float | None = None
    max_path_safety: float | None = None
    category: str | None = None
    evaluator: str | None = None
    strategy: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


@dataclass(frozen=True)
class Scope:
    """Whose traces: one tenant's (the API; ``None`` is the tenant-less CLI data), or every tenant's (an operator's
    ``ecoalign audit`` on its own database)."""

    tenant_id: str | None = None
    all_tenants: bool = False

    def on(self, column: Any) -> list[ColumnElement[bool]]:
        if self.all_tenants:
            return []
        return [column.is_(None) if self.tenant_id is None else column == self.tenant_id]


def _job_branch(scope: Scope) -> Any:
    return select(
        _JOBS.c.id.label("id"),
        literal("job", String(16)).label("kind"),
        _JOBS.c.created_at.label("created_at"),
        _JOBS.c.decision.label("decision"),
        _JOBS.c.path_safety.label("path_safety"),
        _JOBS.c.strategy.label("strategy"),
        _JOBS.c.status.label("status"),
    ).where(*scope.on(_JOBS.c.tenant_id))


def _moderation_safety() -> Any:
    return _MODERATION.c.trace["scan"]["safety"].as_float()


def _moderation_branch(scope: Scope) -> Any:
    return select(
        _MODERATION.c.trace_id.label("id"),
        literal("moderation", String(16)).label("kind"),
        _MODERATION.c.created_at.label("created_at"),
        _MODERATION.c.decision.label("decision"),
        sql_cast(_moderation_safety(), Float).label("path_safety"),
        sql_cast(None, String(64)).label("strategy"),
        literal("completed", String(16)).label("status"),
    ).where(*scope.on(_MODERATION.c.tenant_id))


def traces_union(scope: Scope, kind: TraceKind | None = None) -> Any:
    """The scoped list of every trace (both kinds, or one), as a subquery with the list's columns."""
    branches = [b for k, b in (("job", _job_branch), ("moderation", _moderation_branch)) if kind in (None, k)]
    return union_all(*(b(scope) for b in branches)).subquery("traces")


def _job_ids_with(flt: TraceFilter) -> Any:
    conditions: list[ColumnElement[bool]] = []
    if flt.category is not None:
        node_has = exists().where(
            _NODES.c.job_id == _JOBS.c.id, _NODES.c.categories[flt.category].as_float() >= CATEGORY_THRESHOLD
        )
        conditions.append(or_(_JOBS.c.scan["categories"][flt.category].as_float() >= CATEGORY_THRESHOLD, node_has))
    if flt.evaluator is not None:
        node_by = exists().where(
            _NODES.c.job_id == _JOBS.c.id, _NODES.c.evaluator.contains(flt.evaluator, autoescape=True)
        )
        conditions.append(or_(_JOBS.c.scan["evaluator"].as_string().contains(flt.evaluator, autoescape=True), node_by))
    return select(_JOBS.c.id).where(*conditions)


def _moderation_ids_with(flt: TraceFilter) -> Any:
    conditions: list[ColumnElement[bool]] = []
    if flt.category is not None:
        score = _MODERATION.c.result["category_scores"][flt.category].as_float()
        conditions.append(score >= CATEGORY_THRESHOLD)
    if flt.evaluator is not None:
        evaluators = sql_cast(_MODERATION.c.result["ecoalign"]["evaluators"], String)
        conditions.append(evaluators.contains(flt.evaluator, autoescape=True))
    return select(_MODERATION.c.trace_id).where(*conditions)


def filter_conditions(traces: Any, flt: TraceFilter) -> list[ColumnElement[bool]]:
    """``flt`` as conditions on the columns of ``traces_union``."""
    c = traces.c
    out: list[ColumnElement[bool]] = []
    if flt.decision is not None:
        out.append(c.decision == flt.decision)
    if flt.min_path_safety is not None:
        out.append(c.path_safety >= flt.min_path_safety)
    if flt.max_path_safety is not None:
        out.append(c.path_safety <= flt.max_path_safety)
    if flt.strategy is not None:
        out.append(c.strategy == flt.strategy)
    if flt.created_after is not None:
        out.append(c.created_at >= flt.created_after)
    if flt.created_before is not None:
        out.append(c.created_at < flt.created_before)
    if flt.category is not None or flt.evaluator is not None:
        out.append(
            or_(
                and_(c.kind == "job", c.id.in_(_job_ids_with(flt))),
                and_(c.kind == "moderation", c.id.in_(_moderation_ids_with(flt))),
            )
        )
    return out


def list_traces(session: Session, scope: Scope, flt: TraceFilter, *, limit: int, after: str | None = None) -> Page[Any]:
    """One page of the scope's traces matching ``flt``, newest first (rows of ``traces_union``'s columns).

    Raises ``pagination.InvalidCursor`` if ``after`` is not a trace of the scope."""
    traces = traces_union(scope, flt.kind)
    return keyset_page(session, traces, scope=(), filters=filter_conditions(traces, flt), limit=limit, after=after)


def iter_traces(session: Session, scope: Scope, flt: TraceFilter, *, page_size: int = 200) -> Iterator[Any]:
    """Every matching trace, newest first, one keyset page at a time (constant memory for any number)."""
    after: str | None = None
    while True:
        page = list_traces(session, scope, flt, limit=page_size, after=after)
        yield from page.items
        if not page.has_more:
            return
        after = page.last_id


def find_trace(session: Session, scope: Scope, trace_id: str) -> Job | ModerationTrace | None:
    """The job or moderation trace ``trace_id`` within the scope (None: none, or another tenant's)."""
    job = session.scalars(select(Job).where(Job.id == trace_id, *scope.on(Job.tenant_id))).one_or_none()
    if job is not None:
        return job
    return session.scalars(
        select(ModerationTrace).where(ModerationTrace.trace_id == trace_id, *scope.on(ModerationTrace.tenant_id))
    ).one_or_none()


def path_nodes(session: Session, job: Job) -> list[NodeRow]:
    """The nodes of the job's chosen path, in path order (root first); empty when the job has no path."""
    ids = list(job.path or [])
    if not ids:
        return []
    rows = {r.id: r for r in session.scalars(select(NodeRow).where(NodeRow.job_id == job.id, NodeRow.id.in_(ids)))}
    return [rows[i] for i in ids if i in rows]


__all__ = [
    "CATEGORY_THRESHOLD",
    "TRACE_KINDS",
    "Scope",
    "TraceFilter",
    "find_trace",
    "iter_traces",
    "list_traces",
    "path_nodes",
    "traces_union",
]
