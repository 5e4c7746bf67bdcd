"""reads.claim_lineage: the claim and the lineage read (one statement on Postgres, two on SQLite) — both back ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from ecoalign.engine.graph import Node, NodeKind, NodeStatus, node_id
from ecoalign.store import reads, repository
from ecoalign.store.db import session_scope

from .helpers import new_job

Factory = sessionmaker[Session]
T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _chain(db: Factory) -> tuple[str, list[str]]:
    """A job with root → a → b, and a sibling of a (not in b's lineage)."""
    job = new_job(db, 1000)
    root = node_id(job, NodeKind.ROOT, ())
    a = Node(id=node_id(job, NodeKind.THOUGHT, (root,), 0), kind=NodeKind.THOUGHT, parents=(root,), depth=1)
    sibling = Node(id=node_id(job, NodeKind.THOUGHT, (root,), 1), kind=NodeKind.THOUGHT, parents=(root,), depth=1,
                   ordinal=1)
    b = Node(id=node_id(job, NodeKind.ANSWER, (a.id,), 0), kind=NodeKind.ANSWER, parents=(a.id,), depth=2)
    with session_scope(db) as s:
        repository.insert_nodes(s, job, [a, sibling])
        repository.insert_nodes(s, job, [b])
    return job, [root, a.id, b.id]


def _claim(db: Factory, job: str, node: str, at: datetime, cap: int | None = None) -> tuple[int, object] | None:
    with session_scope(db) as s:
        return reads.claim_lineage(s, job, node, lease_seconds=30, max_attempts=cap, now=at)


def test_a_claim_returns_the_attempt_and_exactly_the_lineage(db: Factory) -> None:
    job, (root, a, b) = _chain(db)
    claimed = _claim(db, job, b, T0)
    assert claimed is not None
    attempt, graph = claimed
    assert attempt == 1
    assert [n.id for n in graph] == [root, a, b]  # parents first; the sibling is not read
    assert graph[b].status is NodeStatus.RUNNING and graph[b].parents == (a,)
    with session_scope(db) as s:
        row = repository.get_node(s, b)
        assert row is not None and row.status == "running" and row.attempts == 1
        assert [n.id for n in reads.load_lineage(s, job, b)] == [n.id for n in graph]


def test_a_held_node_is_not_claimed_until_its_lease_runs_out_and_the_cap_counts_attempts(db: Factory) -> None:
    job, (_, _, b) = _chain(db)
    assert _claim(db, job, b, T0, cap=2) is not None
    assert _claim(db, job, b, T0 + timedelta(seconds=10), cap=2) is None  # leased to the first claimer
    again = _claim(db, job, b, T0 + timedelta(seconds=31), cap=2)
    assert again is not None and again[0] == 2
    assert _claim(db, job, b, T0 + timedelta(seconds=62), cap=2) is None  # two attempts used up
    assert _claim(db, job, b, T0 + timedelta(seconds=62)) is not None  # no cap


def test_nothing_is_claimed_in_a_finished_job_or_once_the_node_is_done(db: Factory) -> None:
    job, (_, a, b) = _chain(db)
    claimed = _claim(db, job, a, T0)
    assert claimed is not None
    with session_scope(db) as s:
        assert repository.finish_node(s, job, a, "done", attempt=claimed[0])
    assert _claim(db, job, a, T0 + timedelta(seconds=60)) is None
    with session_scope(db) as s:
        assert repository.cancel_job(s, job)
    assert _claim(db, job, b, T0) is None
    with session_scope(db) as s:
        row = repository.get_node(s, b)
        assert row is not None and row.attempts == 0
