"""Lean graph reads for the runtime's hot path (each finished node costs a few of them).

* ``load_graph``: the same ``ThoughtGraph`` as ``repository.load_graph``, without loading the trace-only columns
  (``prompt`` and ``gen_ai`` JSON) into ORM objects: Core rows of the columns the graph needs.
* ``load_lineage``: a node and its ancestors only (a recursive CTE over the edges). A node's prompt, its
  evaluation and its verdict depend on nothing else, and a lineage is final once the node exists (its ancestors
  are done), so workers read a few rows instead of the whole graph, whose size grows with the search.

Read-only; both work on Postgres and SQLite. Edges pointing at nodes the same read did not return (a node
committed between the two statements) are ignored, so no snapshot isolation is needed for a consistent graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, literal, select
from sqlalchemy.orm import Session

from ecoalign.engine.graph import GraphError, ThoughtGraph
from ecoalign.store.models import Edge, NodeRow
from ecoalign.store.repository import _to_graph_node

NODES = cast(Table, NodeRow.__table__)
EDGES = cast(Table, Edge.__table__)
TRACE_ONLY = frozenset({"prompt", "gen_ai"})
GRAPH_COLUMNS = tuple(c for c in NODES.c if c.name not in TRACE_ONLY)
_ORDER = (NODES.c.created_at, NODES.c.depth, NODES.c.ordinal, NODES.c.id)


def _build(job_id: str, rows: Sequence[Any], edges: Sequence[Any]) -> ThoughtGraph:
    """Nodes in creation order (parents first), parents from the edges: as ``repository.load_graph``."""
    parents: dict[str, list[str]] = {r.id: [] for r in rows}
    for parent_id, child_id in edges:
        if child_id in parents:
            parents[child_id].append(parent_id)
    graph = ThoughtGraph(job_id)
    remaining = list(rows)
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


def load_graph(session: Session, job_id: str) -> ThoughtGraph:
    """The job's whole graph (what the controller's engine step needs)."""
    rows = session.execute(select(*GRAPH_COLUMNS).where(NODES.c.job_id == job_id).order_by(*_ORDER)).all()
    edges = session.execute(select(EDGES.c.parent_id, EDGES.c.child_id).where(EDGES.c.job_id == job_id)).all()
    return _build(job_id, rows, [tuple(e) for e in edges])


def load_lineage(session: Session, job_id: str, node_id: str) -> ThoughtGraph:
    """The node and every ancestor up to the root, as a ``ThoughtGraph`` (what one node's work needs)."""
    return load_lineage_with_row(session, job_id, node_id)[0]


def load_lineage_with_row(session: Session, job_id: str, node_id: str) -> tuple[ThoughtGraph, Any | None]:
    """``load_lineage`` plus the node's own row (``attempts``, token counts...: what the graph type leaves out)."""
    ancestors = select(literal(node_id).label("id")).cte("ancestors", recursive=True)
    ancestors = ancestors.union(
        select(EDGES.c.parent_id).join(ancestors, EDGES.c.child_id == ancestors.c.id)
    )
    ids = select(ancestors.c.id)
    rows = session.execute(
        select(*GRAPH_COLUMNS).where(NODES.c.job_id == job_id, NODES.c.id.in_(ids)).order_by(*_ORDER)
    ).all()
    edges = session.execute(
        select(EDGES.c.parent_id, EDGES.c.child_id).where(EDGES.c.job_id == job_id, EDGES.c.child_id.in_(ids))
    ).all()
    own = next((r for r in rows if r.id == node_id), None)
    return _build(job_id, rows, [tuple(e) for e in edges]), own
