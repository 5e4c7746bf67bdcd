"""Reads for the training-data export: finished jobs with their whole graphs, in bounded batches (read-only).

Why keyset batches and not one long cursor: each batch is one index range scan of ``jobs`` (``id > last``, in id
order) and one read of those jobs' nodes joined with their parent edges, each in its own short transaction. What
the export holds at once is one batch (``batch_size`` jobs and their nodes), whatever the size of the store, the
same on Postgres and SQLite, and no transaction stays open for the minutes a million-row export takes (a long
snapshot would hold back Postgres' vacuum). Only succeeded jobs are read, and a finished job never changes, so
batches read at different moments still add up to one consistent set.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, exists, func, null, select
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.engine.graph import ThoughtGraph
from ecoalign.store.models import Job, JobStatus, NodeRow
from ecoalign.store.reads import EDGES, GRAPH_COLUMNS, NODE_ORDER, NODES, build_graph

JOBS = cast(Table, Job.__table__)
_JOB_COLUMNS = tuple(
    JOBS.c[name]
    for name in (
        "id", "tenant_id", "strategy", "decision", "request", "policy", "path", "path_safety", "utility",
        "response", "created_at",
    )
)


@dataclass(frozen=True)
class JobFilter:
    """Which finished jobs to export (every field optional; all given ones must hold)."""

    tenant_id: str | None = None
    strategy: str | None = None
    decision: str | None = None
    evaluator: str | None = None  # some node of the job was scored by this evaluator id
    created_after: datetime | None = None
    created_before: datetime | None = None
    min_path_safety: float | None = None
    max_path_safety: float | None = None


@dataclass(frozen=True)
class StoredJob:
    """A succeeded job's row (the columns the export needs) and its whole graph."""

    row: Any
    graph: ThoughtGraph


def _conditions(spec: JobFilter) -> list[Any]:
    where: list[Any] = [JOBS.c.status == JobStatus.SUCCEEDED.value]
    equal = (("tenant_id", spec.tenant_id), ("strategy", spec.strategy), ("decision", spec.decision))
    where += [JOBS.c[column] == value for column, value in equal if value is not None]
    if spec.created_after is not None:
        where.append(JOBS.c.created_at >= spec.created_after)
    if spec.created_before is not None:
        where.append(JOBS.c.created_at < spec.created_before)
    if spec.min_path_safety is not None:
        where.append(JOBS.c.path_safety >= spec.min_path_safety)
    if spec.max_path_safety is not None:
        where.append(JOBS.c.path_safety <= spec.max_path_safety)
    if spec.evaluator is not None:
        where.append(exists().where(NodeRow.job_id == JOBS.c.id, NodeRow.evaluator == spec.evaluator))
    return where


def _jobs_page(session: Session, spec: JobFilter, after: str | None, limit: int) -> Sequence[Any]:
    statement = select(*_JOB_COLUMNS).where(*_conditions(spec)).order_by(JOBS.c.id).limit(limit)
    if after is not None:
        statement = statement.where(JOBS.c.id > after)
    return session.execute(statement).all()


# The graph's columns without the category scores: the export does not use them, and decoding their JSON was a
# sixth of its time (measured with cProfile on 40,000 rows).
_NODE_COLUMNS = tuple(c if c.name != "categories" else null().label("categories") for c in GRAPH_COLUMNS)
_GRAPHS_OF = (
    select(NODES.c.job_id, *_NODE_COLUMNS, EDGES.c.parent_id.label("parent"))
    .select_from(NODES.outerjoin(EDGES, EDGES.c.child_id == NODES.c.id))
    .order_by(NODES.c.job_id, *NODE_ORDER)
)


def _graphs(session: Session, job_ids: list[str]) -> dict[str, ThoughtGraph]:
    rows_by_job: dict[str, list[Any]] = {job_id: [] for job_id in job_ids}
    for row in session.execute(_GRAPHS_OF.where(NODES.c.job_id.in_(job_ids))).all():
        rows_by_job[row.job_id].append(row)
    return {job_id: build_graph(job_id, rows) for job_id, rows in rows_by_job.items()}


def iter_finished_jobs(
    factory: sessionmaker[Session], spec: JobFilter, *, batch_size: int = 256
) -> Iterator[list[StoredJob]]:
    """The matching succeeded jobs in id order, ``batch_size`` at a time, each with its graph."""
    after: str | None = None
    while True:
        with factory() as session, session.begin():
            jobs = _jobs_page(session, spec, after, batch_size)
            if not jobs:
                return
            graphs = _graphs(session, [job.id for job in jobs])
        yield [StoredJob(job, graphs[job.id]) for job in jobs]
        if len(jobs) < batch_size:
            return
        after = jobs[-1].id


def count_finished_jobs(factory: sessionmaker[Session], spec: JobFilter) -> int:
    """How many jobs match (for the progress bar)."""
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(JOBS).where(*_conditions(spec))) or 0)
