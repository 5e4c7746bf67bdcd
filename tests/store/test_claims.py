"""claims.claim_lineage: the claim and the lineage read (one statement on Postgres, two on SQLite) — both back ends;
and the plans Postgres picks for them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.engine.graph import Node, NodeKind, NodeStatus, node_id
from ecoalign.store import claims, reads, repository
from ecoalign.store.db import session_factory, session_scope

from .helpers import new_job

Factory = sessionmaker[Session]


@pytest.fixture
def db(db_in_transaction: Factory) -> Factory:
    """One connection suffices here: every test runs in a transaction rolled back at teardown (tests/conftest.py)."""
    return db_in_transaction
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


def _claim(
    db: Factory, job: str, node: str, at: datetime, cap: int | None = None, crash_cap: int | None = None
) -> tuple[int, object] | None:
    with session_scope(db) as s:
        return claims.claim_lineage(s, job, node, lease_seconds=30, max_attempts=cap, max_crashes=crash_cap, now=at)


def test_a_claim_returns_the_attempt_and_exactly_the_lineage(db: Factory) -> None:
    job, (root, a, b) = _chain(db)
    claimed = _claim(db, job, b, T0)
    assert claimed is not None
    attempt, graph = claimed
    assert attempt == 1
    assert [n.id for n in graph] == [root, a, b]  # parents first; the sibling is not read
    assert graph[b].status is NodeStatus.RUNNING
    assert graph[b].parents == (a,)
    with session_scope(db) as s:
        row = repository.get_node(s, b)
        assert row is not None
        assert row.status == "running"
        assert row.attempts == 1
        assert [n.id for n in reads.load_lineage(s, job, b)] == [n.id for n in graph]


def test_a_held_node_is_not_claimed_until_its_lease_runs_out_and_the_caps_count_crashes_and_failures_apart(
    db: Factory,
) -> None:
    job, (_, _, b) = _chain(db)
    assert _claim(db, job, b, T0, cap=1, crash_cap=2) is not None
    assert _claim(db, job, b, T0 + timedelta(seconds=10), cap=1, crash_cap=2) is None  # leased to the first claimer
    again = _claim(db, job, b, T0 + timedelta(seconds=31), cap=1, crash_cap=2)  # the first one's lease ran out
    assert again is not None
    assert again[0] == 2
    # two attempts lost to crashes: the crash bound is used up, though no attempt failed (failures 0 < cap 1)
    assert _claim(db, job, b, T0 + timedelta(seconds=62), cap=1, crash_cap=2) is None
    third = _claim(db, job, b, T0 + timedelta(seconds=62))  # no caps
    assert third is not None
    with session_scope(db) as s:  # the third attempt raises: a failure, not a crash
        assert repository.hand_back(s, job, b, third[0], now=T0 + timedelta(seconds=63)) == 1
    assert _claim(db, job, b, T0 + timedelta(seconds=64), cap=1, crash_cap=3) is None  # one failure: cap 1 used up
    fourth = _claim(db, job, b, T0 + timedelta(seconds=64), cap=2, crash_cap=3)  # crashes 2 < 3, failures 1 < 2
    assert fourth is not None
    assert fourth[0] == 4


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
        assert row is not None
        assert row.attempts == 0


# -- plans: the lineage is read by index lookups at any table size -------------------------------------------------
def _explained(session: Session, run: Callable[[], object]) -> list[dict[str, Any]]:
    """The plans Postgres picks for the statements ``run()`` sends, with the same parameters (EXPLAIN only)."""
    sent: list[tuple[str, Any]] = []
    connection = session.connection()

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", grab)
    try:
        run()
    finally:
        event.remove(connection, "before_cursor_execute", grab)
    cursor = connection.connection.driver_connection.cursor()
    plans = []
    for statement, parameters in sent:
        cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
        plans.append(cursor.fetchone()[0][0]["Plan"])
    return plans


def _scans(plan: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if "Relation Name" in plan:
        yield plan["Node Type"], plan["Relation Name"]
    for child in plan.get("Plans", ()):
        yield from _scans(child)


def _recursion(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan of the recursive CTE (the lineage's walk up the edges)."""
    if plan["Node Type"] == "Recursive Union":
        return plan
    for child in plan.get("Plans", ()):
        with suppress(LookupError):
            return _recursion(child)
    raise LookupError("no recursive union in the plan")


@pytest.mark.postgres
@pytest.mark.parametrize("size", [2000, 20000])  # below a few hundred edges a scan is the cheap way
def test_the_lineage_walks_the_edges_index_not_a_scan_of_every_job(pg_clean_engine: Engine, size: int) -> None:
    """The recursion is priced at 10 rows a step; in a middle range of table sizes (2,000 edges, say) the planner
    used to hash-join each step with a scan of the whole edges table: 2 ms a claim at 2,750 edges in the pipeline
    benchmark, growing with the table."""
    db = session_factory(pg_clean_engine)
    job = new_job(db, 1000)
    leaf = f"n{size - 1}"
    with session_scope(db) as s:  # a binary tree under one job (parent of n<g> is n<g // 2>), analyzed
        s.execute(text(
            "INSERT INTO nodes (id, job_id, kind, depth, ordinal, action, status, text, model, evaluator, "
            "categories, created_at) "
            "SELECT 'n' || g, :job, CASE WHEN g = 0 THEN 'root' ELSE 'thought' END, floor(log(2, g + 1)), 0, "
            "'think', CASE WHEN g = :leaf THEN 'pending' ELSE 'done' END, '', '', '', '{}', "
            "now() + g * interval '1 ms' FROM generate_series(0, :leaf) g"
        ), {"job": job, "leaf": size - 1})
        s.execute(text(
            "INSERT INTO edges (job_id, parent_id, child_id) SELECT :job, 'n' || (g / 2), 'n' || g "
            "FROM generate_series(1, :leaf) g"
        ), {"job": job, "leaf": size - 1})
        s.execute(text("ANALYZE nodes, edges"))
    with session_scope(db) as s:
        plans = _explained(s, lambda: claims.claim_lineage(s, job, leaf, lease_seconds=30))
        plans += _explained(s, lambda: reads.load_lineage(s, job, leaf))
        assert len(plans) == 2
        for plan in plans:
            scans = set(_scans(_recursion(plan)))
            assert ("Seq Scan", "edges") not in scans
            assert scans & {("Index Scan", "edges"), ("Index Only Scan", "edges")}
        ancestors, g = [], size - 1
        while g:
            ancestors.append(f"n{g}")
            g //= 2
        assert [n.id for n in reads.load_lineage(s, job, leaf)] == ["n0", *reversed(ancestors)]
