"""Lean graph reads for the runtime's hot path (each finished node costs a few of them). Nothing here writes.

* ``load_graph``: a job's whole ``ThoughtGraph``, from Core rows of only the columns the graph needs (not the
  trace's ``prompt`` and ``gen_ai`` JSON, timings or leases); the statements are built once.
* ``load_lineage``: a node and its ancestors only (a recursive CTE over the edges). A node's prompt, its
  evaluation and its verdict depend on nothing else, and a lineage is final once the node exists (its ancestors
  are done), so workers read a few rows instead of the whole graph, whose size grows with the search.
* ``GraphCache``: the controller's whole-graph read, from a per-process copy plus the rows changed since it
  (Postgres): what a finished node costs to read no longer grows with the graph.

A worker's claim of a node together with its lineage read (a write) is ``claims.claim_lineage``, which builds
on the columns and the graph builder here. Each read works on Postgres and SQLite and is one statement (nodes
joined with their parent edges), so it sees one snapshot: a consistent graph without any isolation level above
READ COMMITTED. This module imports nothing else of the store's write side (``repository`` imports it).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, literal_column, or_, select, true
from sqlalchemy.orm import Session

from ecoalign.engine.graph import GraphError, Node, NodeKind, NodeStatus, ThoughtGraph
from ecoalign.store.db import after_commit, transaction_info
from ecoalign.store.models import Edge, NodeRow

NODES = cast(Table, NodeRow.__table__)
EDGES = cast(Table, Edge.__table__)
IN_FLIGHT = (NodeStatus.PENDING.value, NodeStatus.RUNNING.value)
# What ``to_graph_node`` reads, plus what a worker checks on its own node (status, attempt, usage).
GRAPH_COLUMNS = tuple(
    NODES.c[name]
    for name in (
        "id", "kind", "depth", "status", "ordinal", "text", "safety", "utility", "categories", "tokens",
        "est_tokens", "model", "evaluator", "prune_reason", "failure_reason", "reason", "attempts",
        "tokens_prompt", "tokens_completion",
    )
)
NODE_ORDER = (NODES.c.created_at, NODES.c.depth, NODES.c.ordinal, NODES.c.id)  # creation order: parents first
_KINDS = {kind.value: kind for kind in NodeKind}
_STATUSES = {status.value: status for status in NodeStatus}


def to_graph_node(row: Any, parents: tuple[str, ...]) -> Node:
    """A stored row (a ``NodeRow`` or a row of ``GRAPH_COLUMNS``) as the engine's ``Node`` (runs for every node of
    every graph read: kept lean)."""
    return Node(
        id=row.id,
        kind=_KINDS[row.kind],
        parents=parents,
        depth=row.depth,
        status=_STATUSES[row.status],
        ordinal=row.ordinal,
        text=row.text,
        safety=row.safety,
        utility=row.utility,
        categories=row.categories or {},  # a fresh dict from the JSON column, str -> float as it was written
        tokens=row.tokens,
        est_tokens=row.est_tokens,
        model=row.model,
        evaluator=row.evaluator,
        prune_reason=row.prune_reason,
        failure_reason=row.failure_reason,
        reason=row.reason,
    )


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


def build_graph(job_id: str, rows: Sequence[Any]) -> ThoughtGraph:
    """Nodes in creation order (parents first), from rows of one read (a node's columns and one parent a row)."""
    graph = ThoughtGraph(job_id)
    remaining = _grouped(rows)
    while remaining:  # creation order is topological; this only repairs ties in created_at
        deferred = []
        for row, parents in remaining:
            if all(p in graph for p in parents):
                graph.add(to_graph_node(row, parents))
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
    .order_by(*NODE_ORDER)
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
        .order_by(*NODE_ORDER)
    )


_LINEAGE = {dialect: _lineage_statement(dialect) for dialect in ("postgresql", "sqlite")}


def load_graph(session: Session, job_id: str) -> ThoughtGraph:
    """The job's whole graph (what the controller's engine step needs)."""
    return build_graph(job_id, session.execute(_GRAPH, {"job_id": job_id}).all())


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
    .order_by(*NODE_ORDER)
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
    graph = build_graph(job_id, rows)
    last = max((_sort_key(row) for row in rows), default=())
    return _Copy(graph, _settled_rev(rows, -1), last)


def _apply(copy: _Copy, rows: Sequence[Any]) -> bool:
    """Bring ``copy`` up to date with the changed rows; False if only a whole read can (a new node that a whole
    read would not put last, or one whose parent is missing). ``copy`` is then half-updated: drop it."""
    graph = copy.graph
    for row, parents in _grouped(rows):
        node = to_graph_node(row, parents)
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
    return build_graph(job_id, rows), own
