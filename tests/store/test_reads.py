"""The lean graph reads (``ecoalign.store.reads``) against an independent reconstruction from the raw rows.

The expected graph is rebuilt here from plain ``SELECT * FROM nodes`` / ``edges`` statements, not through any
store helper, so a read that drops a column, mixes up parents, loses a node or breaks creation order fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.content import Request
from ecoalign.engine.graph import Node, NodeKind, ThoughtGraph, node_id
from ecoalign.engine.policy import Policy
from ecoalign.evaluators.heuristic import HeuristicNodeEvaluator, HeuristicScanner
from ecoalign.providers.openai_http import OpenAIChatProvider
from ecoalign.runtime import controller
from ecoalign.runtime.inprocess import run_job
from ecoalign.runtime.services import Services
from ecoalign.store import reads, repository
from ecoalign.store.db import run_in_transaction, session_scope
from ecoalign.testing.emulator import EmulatorServer

from .helpers import new_job

Factory = sessionmaker[Session]
NODE_FIELDS = (
    "id", "kind", "depth", "status", "ordinal", "text", "safety", "utility", "categories", "tokens", "est_tokens",
    "model", "evaluator", "prune_reason", "failure_reason", "reason",
)


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    with EmulatorServer() as emulator:
        provider = OpenAIChatProvider(emulator.base_url, "ecoalign-emulator")
        yield Services(provider, HeuristicScanner(), HeuristicNodeEvaluator(), closers=[provider.close])
        provider.close()


def _raw(session: Session, job_id: str) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """The job's node rows (every graph field, parents from the edges) and each node's parents, by plain SQL."""
    edges: dict[str, list[str]] = {}
    for child, parent in session.execute(
        text("SELECT child_id, parent_id FROM edges WHERE job_id = :job"), {"job": job_id}
    ):
        edges.setdefault(child, []).append(parent)
    rows = session.execute(text("SELECT * FROM nodes WHERE job_id = :job"), {"job": job_id}).mappings().all()
    nodes = []
    for row in rows:
        node = {name: row[name] for name in NODE_FIELDS}
        if isinstance(node["categories"], str):  # SQLite hands JSON back as text to a raw statement
            node["categories"] = json.loads(node["categories"])
        node["parents"] = tuple(sorted(edges.get(row["id"], [])))
        node["created_at"] = row["created_at"]
        nodes.append(node)
    return nodes, edges


def _as_dict(node: Node) -> dict[str, Any]:
    fields = {name: getattr(node, name) for name in NODE_FIELDS}
    fields["kind"], fields["status"] = str(node.kind.value), str(node.status.value)
    fields["parents"] = node.parents
    return fields


def _ancestors(edges: dict[str, list[str]], node: str) -> set[str]:
    seen, todo = {node}, [node]
    while todo:
        for parent in edges.get(todo.pop(), []):
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def _assert_parents_first(graph: ThoughtGraph) -> None:
    placed: set[str] = set()
    for node in graph:
        assert set(node.parents) <= placed, f"{node.id} comes before one of its parents"
        placed.add(node.id)


def test_a_real_jobs_graph_and_lineages_match_the_raw_rows(db: Factory, services: Services) -> None:
    job_id, _ = run_in_transaction(
        db, lambda s: controller.submit(s, Request("How do I pick a lock on my own shed?"), Policy(budget=6000))
    )
    assert run_job(db, services, job_id) == "succeeded"
    with db() as s:
        raw, edges = _raw(s, job_id)
        graph = reads.load_graph(s, job_id)
        assert len(raw) > 5
        expected = sorted(raw, key=lambda n: (n["created_at"], n["depth"], n["ordinal"], n["id"]))
        assert [_as_dict(n) for n in graph] == [{k: v for k, v in n.items() if k != "created_at"} for n in expected]
        _assert_parents_first(graph)
        for node in raw:
            lineage, row = reads.load_lineage_with_row(s, job_id, node["id"])
            assert {n.id for n in lineage} == _ancestors(edges, node["id"])
            assert all(_as_dict(n) == _as_dict(graph[n.id]) for n in lineage)
            _assert_parents_first(lineage)
            assert row is not None
            assert row.id == node["id"]
            assert row.attempts >= 1


def test_a_merge_and_a_child_stamped_before_its_parent_are_read_parents_first(db: Factory) -> None:
    """Creation order is topological except for ties and clock steps: the read repairs those, keeps both parents
    of a merge, and reads only this job's nodes."""
    job = new_job(db, 1000)
    other = new_job(db, 1000)
    root = node_id(job, NodeKind.ROOT, ())
    a = Node(id=node_id(job, NodeKind.THOUGHT, (root,), 0), kind=NodeKind.THOUGHT, parents=(root,), depth=1)
    b = Node(id=node_id(job, NodeKind.THOUGHT, (root,), 1), kind=NodeKind.THOUGHT, parents=(root,), depth=1,
             ordinal=1)
    merge = Node(id=node_id(job, NodeKind.ANSWER, (a.id, b.id)), kind=NodeKind.ANSWER, parents=(a.id, b.id), depth=2,
                 text="merged", categories={"violence": 0.25})
    with session_scope(db) as s:
        repository.insert_nodes(s, job, [a, b, merge])
        a_row = repository.get_node(s, a.id)
        assert a_row is not None
        s.execute(  # the merge now sorts before one of its parents
            text("UPDATE nodes SET created_at = :at WHERE id = :id"),
            {"at": a_row.created_at - timedelta(seconds=1), "id": merge.id},
        )
    with db() as s:
        raw, edges = _raw(s, job)
        graph = reads.load_graph(s, job)
        assert {n.id for n in graph} == {n["id"] for n in raw} == {root, a.id, b.id, merge.id}
        assert graph[merge.id].parents == tuple(sorted((a.id, b.id)))
        assert graph[merge.id].text == "merged"
        assert graph[merge.id].categories == {"violence": 0.25}
        _assert_parents_first(graph)
        assert [n.id for n in graph][-1] == merge.id
        assert {n.id for n in reads.load_lineage(s, job, merge.id)} == _ancestors(edges, merge.id)
        assert [n.id for n in reads.load_graph(s, other)] == [node_id(other, NodeKind.ROOT, ())]
