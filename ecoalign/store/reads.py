"""Lean graph reads for the runtime's hot path (each finished node costs a few of them).

* ``load_graph``: the same ``ThoughtGraph`` as ``repository.load_graph``, from Core rows of only the columns the
  graph needs (not the trace's ``prompt`` and ``gen_ai`` JSON, timings or leases); the statements are built once.
* ``load_lineage``: a node and its ancestors only (a recursive CTE over the edges). A node's prompt, its
  evaluation and its verdict depend on nothing else, and a lineage is final once the node exists (its ancestors
  are done), so workers read a few rows instead of the whole graph, whose size grows with the search.
* ``claim_lineage``: a worker's claim of a node and its lineage read, in one round trip on Postgres.
* ``GraphCache``: the controller's whole-graph read, from a per-process copy plus the rows changed since it
  (Postgres): what a finished node costs to read no longer grows with the graph.

Both reads work on Postgres and SQLite and write nothing (``claim_lineage`` writes the claim). Each is one
statement (nodes joined with their parent edges), so it sees one snapshot: a consistent graph without any
isolation level above READ COMMITTED.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, literal_column, or_, select, text, true
from sqlalchemy.orm import Session

from ecoalign.engine.graph import GraphError, NodeStatus, ThoughtGraph
from ecoalign.store import repository
from ecoalign.store.db import after_commit, transaction_info
from ecoalign.store.models import ACTIVE_JOB_STATUSES, Edge, NodeRow
from ecoalign.store.repository import IN_FLIGHT, _to_graph_node

NODES = cast(Table, NodeRow.__table__)
EDGES = cast(Table, Edge.__table__)
# What ``repository._to_graph_node`` reads, plus what a worker checks on its own node (status, attempt, usage).
GRAPH_COLUMNS = tuple(
    NODES.c[name]
    for name in (
        "id", "kind", "depth", "status", "ordinal", "text", "safety", "utility", "categories", "tokens",
        "est_tokens", "model", "evaluator", "prune_reason", "failure_reason", "reason", "attempts",
        "tokens_prompt", "tokens_completion",
    )
)
_ORDER = (NODES.c.created_at, NODES.c.depth, NODES.c.ordinal, NODES.c.id)


def _grouped(rows: Sequence[Any]) -> list[tuple[Any, tuple[str, ...]]]:
    """One (row, sorted parents) per node, in the rows' order, from rows of one read: a node's columns with one of
    its parents (``parent``, NULL for the root), one row per parent."""
    parents: dict[str, list[str]] = {}
    first: list[Any] = []
    for row in rows:
        if row.id not in parents:
            parents[row.id] = []
            first.append(row)
        if row.parent is not None:
            parents[row.id].append(row.parent)
    return [(row, tuple(sorted(parents[row.id]))) for row in first]


def _build(job_id: str, rows: Sequence[Any]) -> ThoughtGraph:
    """Nodes in creation order (parents first), as ``repository.load_graph``, from rows of one read."""
    graph = ThoughtGraph(job_id)
    remaining = _grouped(rows)
    while remaining:  # creation order is topological; this only repairs ties in created_at
        deferred = []
        for row, parents in remaining:
            if all(p in graph for p in parents):
                graph.add(_to_graph_node(row, parents))
            else:
                deferred.append((row, parents))
        if len(deferred) == len(remaining):
            raise GraphError(f"job {job_id}: nodes {[row.id for row, _ in deferred]} have missing parents")
        remaining = deferred
    return graph


# One statement per read, built once: every node's columns joined with its parent edges (a statement costs a
# round trip and, built anew, several times the CPU it takes to run).
_WITH_PARENTS = NODES.outerjoin(EDGES, EDGES.c.child_id == NODES.c.id)
_GRAPH = (
    select(*GRAPH_COLUMNS, EDGES.c.parent_id.label("parent"))
    .select_from(_WITH_PARENTS)
    .where(NODES.c.job_id == bindparam("job_id"))
    .order_by(*_ORDER)
)


def _lineage_statement(dialect: str) -> Any:
    """The lineage read. On Postgres each step up the graph is an index lookup of the current nodes' parent edges,
    fenced (``LATERAL ... OFFSET 0``) so the planner cannot turn it into a hash join over every edge of every job:
    it prices the recursion at 10 rows per step and, below some 10,000 edges, chose a scan of the whole table per
    step (2 ms a claim at 2,750 edges, growing with the table). SQLite has no LATERAL and always loops on the index.
    """
    ancestors = select(bindparam("node_id", type_=NODES.c.id.type).label("id")).cte("ancestors", recursive=True)
    if dialect == "postgresql":
        up = (
            select(EDGES.c.parent_id)
            .where(EDGES.c.child_id == ancestors.c.id)
            .offset(literal_column("0"))
            .lateral("up")
        )
        ancestors = ancestors.union(select(up.c.parent_id).select_from(ancestors).join(up, true()))
    else:
        ancestors = ancestors.union(select(EDGES.c.parent_id).join(ancestors, EDGES.c.child_id == ancestors.c.id))
    return (
        select(*GRAPH_COLUMNS, EDGES.c.parent_id.label("parent"))
        .select_from(_WITH_PARENTS)
        .where(NODES.c.job_id == bindparam("job_id"), NODES.c.id.in_(select(ancestors.c.id)))
        .order_by(*_ORDER)
    )


_LINEAGE = {dialect: _lineage_statement(dialect) for dialect in ("postgresql", "sqlite")}


def _claim_with_lineage_statement() -> Any:
    """Postgres: the claim (``repository.claim_statement``: same conditions) as a data-modifying CTE, and the
    lineage read joined to its result: one round trip, and no rows at all when the claim misses. The read sees the
    snapshot from before the update (the claimed node still pending); ``claim_lineage`` corrects the status. The
    recursion looks parents up on the index, fenced as in ``_lineage_statement``.

    Written as SQL: SQLAlchemy (2.1) cannot cache a select over an ``UPDATE`` CTE with literal values."""
    active = ", ".join(f"'{status}'" for status in ACTIVE_JOB_STATUSES)
    columns = ", ".join(f"nodes.{column.name}" for column in GRAPH_COLUMNS)
    order = ", ".join(f"nodes.{column.name}" for column in _ORDER)
    return text(
        f"""
        WITH RECURSIVE claimed AS (
            UPDATE nodes SET status = 'running', attempts = nodes.attempts + 1, lease_expires_at = :b_lease,
                started_at = coalesce(nodes.started_at, :b_now)
            WHERE nodes.id = :b_node AND nodes.job_id = :b_job
                AND EXISTS (SELECT 1 FROM jobs WHERE jobs.id = :b_job AND jobs.status IN ({active}))
                AND (nodes.status = 'pending' OR (nodes.status = 'running' AND nodes.lease_expires_at < :b_now))
                AND nodes.attempts < :b_cap
            RETURNING nodes.attempts
        ), ancestors(id) AS (
            SELECT CAST(:b_node AS VARCHAR)
            UNION SELECT up.parent_id FROM ancestors CROSS JOIN LATERAL (
                SELECT edges.parent_id FROM edges WHERE edges.child_id = ancestors.id OFFSET 0
            ) AS up
        )
        SELECT {columns}, edges.parent_id AS parent, claimed.attempts AS claimed_attempt
        FROM nodes LEFT OUTER JOIN edges ON edges.child_id = nodes.id JOIN claimed ON true
        WHERE nodes.job_id = :b_job AND nodes.id IN (SELECT id FROM ancestors)
        ORDER BY {order}
        """
    ).bindparams(
        bindparam("b_now", type_=NODES.c.started_at.type),
        bindparam("b_lease", type_=NODES.c.lease_expires_at.type),
    )


_CLAIM_WITH_LINEAGE = _claim_with_lineage_statement()
_NO_CAP = 2**31 - 1


def claim_lineage(
    session: Session,
    job_id: str,
    node_id: str,
    *,
    lease_seconds: float,
    max_attempts: int | None = None,
    now: datetime | None = None,
) -> tuple[int, ThoughtGraph] | None:
    """``repository.claim_node`` and, if it won, ``load_lineage``: (attempt, lineage), or None if the claim missed.

    One statement on Postgres (the claim is a data-modifying CTE); two elsewhere.
    """
    if session.get_bind().dialect.name != "postgresql":
        attempt = repository.claim_node(
            session, job_id, node_id, lease_seconds=lease_seconds, max_attempts=max_attempts, now=now
        )
        return None if attempt is None else (attempt, load_lineage(session, job_id, node_id))
    params = repository.claim_parameters(
        job_id, node_id, lease_seconds=lease_seconds, max_attempts=max_attempts, now=now
    )
    params.setdefault("b_cap", _NO_CAP)
    rows = session.execute(_CLAIM_WITH_LINEAGE, params).all()
    if not rows:
        return None
    graph = _build(job_id, rows)
    graph[node_id].status = NodeStatus.RUNNING  # what the claim just wrote (the read saw the row before it)
    return int(rows[0].claimed_attempt), graph


def load_graph(session: Session, job_id: str) -> ThoughtGraph:
    """The job's whole graph (what the controller's engine step needs)."""
    return _build(job_id, session.execute(_GRAPH, {"job_id": job_id}).all())


# -- the controller's graph, kept per process and brought up to date from what changed ------------------------------
# Rows stamped after a copy was read, and every node still in flight. What makes that enough (Postgres; see
# ``GraphCache``): a node becomes settled, and changes while settled, only in a transaction that holds its job's row
# lock, as the reader does; writes without that lock (claims, recorded generations, leases) touch in-flight nodes.
_CHANGED = (
    select(*GRAPH_COLUMNS, NODES.c.rev, NODES.c.created_at, EDGES.c.parent_id.label("parent"))
    .select_from(_WITH_PARENTS)
    .where(
        NODES.c.job_id == bindparam("job_id"),
        or_(NODES.c.rev > bindparam("rev"), NODES.c.status.in_(IN_FLIGHT)),
    )
    .order_by(*_ORDER)
)


@dataclass
class _Copy:
    """A job's graph as stored, for every settled node stamped up to ``rev``; ``last`` orders its newest node."""

    graph: ThoughtGraph
    rev: int
    last: tuple[Any, ...]


def _sort_key(row: Any) -> tuple[Any, ...]:
    return (row.created_at, row.depth, row.ordinal, row.id)


def _settled_rev(rows: Sequence[Any], since: int) -> int:
    return max((row.rev for row in rows if row.status not in IN_FLIGHT), default=since)


def _copy_from(job_id: str, rows: Sequence[Any]) -> _Copy:
    graph = _build(job_id, rows)
    last = max((_sort_key(row) for row in rows), default=())
    return _Copy(graph, _settled_rev(rows, -1), last)


def _apply(copy: _Copy, rows: Sequence[Any]) -> bool:
    """Bring ``copy`` up to date with the changed rows; False if only a whole read can (a new node that a whole
    read would not put last, or one whose parent is missing). ``copy`` is then half-updated: drop it."""
    graph = copy.graph
    for row, parents in _grouped(rows):
        node = _to_graph_node(row, parents)
        try:
            if row.id in graph:
                graph.replace(node)
                continue
            key = _sort_key(row)
            if key <= copy.last:
                return False
            graph.add(node)
        except GraphError:
            return False
        copy.last = key
    copy.rev = _settled_rev(rows, copy.rev)
    return True


class GraphCache:
    """The controller's graph reads, one per finished node: a per-process copy of each job's graph, brought up to
    date by reading only the rows stamped since the copy (``nodes.rev``, migration 0004) and the nodes in flight.

    Why: a whole read costs rows, JSON and node objects in proportion to the graph, for every node of the job;
    this costs what changed. Exact, not a heuristic: every settled node is stamped by a writer that held the
    job's row lock, as the reader does, so once a copy is read no settled node can appear with a lower stamp; and
    in-flight nodes, which lock-free writers do touch, are read every time. A copy is taken out while a
    transaction uses it and put back only after that transaction commits, so it never holds rolled-back state;
    reads inside a savepoint, which can roll back alone, are whole and leave the copy alone. Off Postgres (no
    stamping trigger) every read is whole.
    """

    def __init__(self, size: int = 128) -> None:
        self.size = size
        self._copies: OrderedDict[tuple[Any, str], _Copy] = OrderedDict()  # by (engine, job id)
        self._lock = threading.Lock()

    def load(self, session: Session, job_id: str) -> ThoughtGraph:
        """The job's whole graph as ``load_graph`` reads it. Call it with the job's row lock held."""
        bind = session.get_bind()
        if bind.dialect.name != "postgresql" or session.in_nested_transaction():
            return load_graph(session, job_id)  # no stamps; or in a savepoint, which may roll back on its own
        in_use: dict[str, _Copy] = transaction_info(session).setdefault(_IN_USE, {})
        key = (bind, job_id)  # one process may talk to several databases (tests, tools)
        copy = in_use.get(job_id) or self._take(key)
        if copy is not None:
            rows = session.execute(_CHANGED, {"job_id": job_id, "rev": copy.rev}).all()
            if not _apply(copy, rows):
                copy = None
        if copy is None:
            copy = _copy_from(job_id, session.execute(_CHANGED, {"job_id": job_id, "rev": -1}).all())
        if job_id not in in_use:
            after_commit(session, lambda: self._put(key, in_use[job_id]))
        in_use[job_id] = copy
        return copy.graph

    def _take(self, key: tuple[Any, str]) -> _Copy | None:
        with self._lock:
            return self._copies.pop(key, None)

    def _put(self, key: tuple[Any, str], copy: _Copy) -> None:
        with self._lock:
            self._copies[key] = copy
            while len(self._copies) > self.size:
                self._copies.popitem(last=False)


_IN_USE = "ecoalign.graph_copies"


def load_lineage(session: Session, job_id: str, node_id: str) -> ThoughtGraph:
    """The node and every ancestor up to the root, as a ``ThoughtGraph`` (what one node's work needs)."""
    return load_lineage_with_row(session, job_id, node_id)[0]


def load_lineage_with_row(session: Session, job_id: str, node_id: str) -> tuple[ThoughtGraph, Any | None]:
    """``load_lineage`` plus the node's own row (``attempts``, token counts...: what the graph type leaves out)."""
    statement = _LINEAGE["postgresql" if session.get_bind().dialect.name == "postgresql" else "sqlite"]
    rows = session.execute(statement, {"job_id": job_id, "node_id": node_id}).all()
    own = next((r for r in rows if r.id == node_id), None)
    return _build(job_id, rows), own
