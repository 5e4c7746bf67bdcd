"""Lean graph reads for the runtime's hot path (each finished node costs a few of them).

* ``load_graph``: the same ``ThoughtGraph`` as ``repository.load_graph``, from Core rows of only the columns the
  graph needs (not the trace's ``prompt`` and ``gen_ai`` JSON, timings or leases); the statements are built once.
* ``load_lineage``: a node and its ancestors only (a recursive CTE over the edges). A node's prompt, its
  evaluation and its verdict depend on nothing else, and a lineage is final once the node exists (its ancestors
  are done), so workers read a few rows instead of the whole graph, whose size grows with the search.

Read-only; both work on Postgres and SQLite. Each is one statement (nodes joined with their parent edges), so
it sees one snapshot: a consistent graph without any isolation level above READ COMMITTED.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from ecoalign.engine.graph import GraphError, ThoughtGraph
from ecoalign.store.models import Edge, NodeRow
from ecoalign.store.repository import _to_graph_node

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


def _build(job_id: str, rows: Sequence[Any]) -> ThoughtGraph:
    """Nodes in creation order (parents first), as ``repository.load_graph``, from rows of one read: a node's
    columns with one of its parents (``parent``, NULL for the root), one row per parent."""
    parents: dict[str, list[str]] = {}
    nodes: list[Any] = []
    for row in rows:
        if row.id not in parents:
            parents[row.id] = []
            nodes.append(row)
        if row.parent is not None:
            parents[row.id].append(row.parent)
    graph = ThoughtGraph(job_id)
    remaining = nodes
    while remaining:  # creation order is topological; this only repairs ties in created_at
        deferred = []
        for row in remaining:
            if all(p in graph for p in parents[row.id]):
                graph.add(_to_graph_node(row, tuple(sorted(parents[row.id]))))
            else:
                deferred.append(row)
        if len(deferred) == len(remaining):
            raise GraphError(f"job {job_id}: nodes {[r.id for r in deferred]} have missing parents")
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


def _lineage_statement() -> Any:
    ancestors = select(bindparam("node_id", type_=NODES.c.id.type).label("id")).cte("ancestors", recursive=True)
    ancestors = ancestors.union(select(EDGES.c.parent_id).join(ancestors, EDGES.c.child_id == ancestors.c.id))
    return (
        select(*GRAPH_COLUMNS, EDGES.c.parent_id.label("parent"))
        .select_from(_WITH_PARENTS)
        .where(NODES.c.job_id == bindparam("job_id"), NODES.c.id.in_(select(ancestors.c.id)))
        .order_by(*_ORDER)
    )


_LINEAGE = _lineage_statement()


def load_graph(session: Session, job_id: str) -> ThoughtGraph:
    """The job's whole graph (what the controller's engine step needs)."""
    return _build(job_id, session.execute(_GRAPH, {"job_id": job_id}).all())


def load_lineage(session: Session, job_id: str, node_id: str) -> ThoughtGraph:
    """The node and every ancestor up to the root, as a ``ThoughtGraph`` (what one node's work needs)."""
    return load_lineage_with_row(session, job_id, node_id)[0]


def load_lineage_with_row(session: Session, job_id: str, node_id: str) -> tuple[ThoughtGraph, Any | None]:
    """``load_lineage`` plus the node's own row (``attempts``, token counts...: what the graph type leaves out)."""
    rows = session.execute(_LINEAGE, {"job_id": job_id, "node_id": node_id}).all()
    own = next((r for r in rows if r.id == node_id), None)
    return _build(job_id, rows), own
