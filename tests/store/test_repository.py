"""Repository: jobs, idempotent graph inserts, leases, conditional results, fan-in, cancel — both back ends."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.engine.graph import GraphError, Node, NodeKind, NodeStatus, node_id
from ecoalign.store import ledger, reads, repository
from ecoalign.store.db import run_in_transaction, session_scope
from ecoalign.store.models import Edge, Job, NodeRow
from ecoalign.store.repository import PlannedNode

from .helpers import new_job, new_tenant

Factory = sessionmaker[Session]
LEASE = 30.0


def _thought(job: str, parents: tuple[str, ...], ordinal: int = 0, depth: int = 1) -> Node:
    return Node(
        id=node_id(job, NodeKind.THOUGHT, parents, ordinal),
        kind=NodeKind.THOUGHT,
        parents=parents,
        depth=depth,
        ordinal=ordinal,
        est_tokens=120,
    )


def _root(job: str) -> str:
    return node_id(job, NodeKind.ROOT, ())


# -- jobs --------------------------------------------------------------------------------------------------------
def test_create_job_with_root_and_idempotency(db: Factory) -> None:
    tenant = new_tenant(db)
    kwargs = {
        "strategy": "ecoalign",
        "request": {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]},
        "policy": {"tau": 0.5},
        "budget_total": 500,
        "request_fingerprint": "f" * 64,
        "root_text": "hi",
    }
    with session_scope(db) as s:
        job, created = repository.create_job(s, tenant_id=tenant, idempotency_key="k1", **kwargs)
        assert created
        assert job.status == "queued"
        assert job.version == 1
        job_id = job.id
    with session_scope(db) as s:
        again, created = repository.create_job(s, tenant_id=tenant, idempotency_key="k1", **kwargs)
        assert not created
        assert again.id == job_id
        # the same key under no tenant is a different job; twice under no tenant is the same job
        anon, created = repository.create_job(s, idempotency_key="k1", **kwargs)
        assert created
        assert anon.id != job_id
        anon2, created = repository.create_job(s, idempotency_key="k1", **kwargs)
        assert not created
        assert anon2.id == anon.id
        # no key: always new
        assert repository.create_job(s, **kwargs)[1]
        assert repository.create_job(s, **kwargs)[1]
    with session_scope(db) as s:
        graph = reads.load_graph(s, job_id)
        assert len(graph) == 1
        assert graph.root.id == _root(job_id)
        assert graph.root.text == "hi"
        assert graph.root.status is NodeStatus.PENDING
        loaded = repository.get_job(s, job_id)
        assert loaded is not None
        assert loaded.request == kwargs["request"]
        assert loaded.created_at.tzinfo is not None


def test_job_lifecycle_and_version(db: Factory) -> None:
    job_id = new_job(db, 1000)
    with session_scope(db) as s:
        locked = repository.lock_job(s, job_id)
        assert locked is not None
        assert locked.id == job_id
        assert repository.start_job(s, job_id)
        assert not repository.start_job(s, job_id)
        assert repository.record_scan(s, job_id, {"segments": [{"kind": "text", "safety": 0.7}], "s0": 0.7})
        ledger.reserve(s, job_id, "refusal", "refusal", 50)
    with session_scope(db) as s:
        job = repository.get_job(s, job_id)
        assert job is not None
        assert job.status == "running"
        assert job.started_at is not None
        assert job.version == 3
        assert repository.finish_job(
            s,
            job_id,
            status="succeeded",
            decision="answered",
            response="42",
            path=[_root(job_id)],
            path_safety=0.9,
            utility=0.8,
        )
        assert not repository.finish_job(s, job_id, status="failed", failure_reason="late")
        assert not repository.cancel_job(s, job_id)
        assert not repository.record_scan(s, job_id, {})
    with session_scope(db) as s:
        job = repository.get_job(s, job_id)
        assert job is not None
        assert (job.status, job.decision, job.response, job.path) == ("succeeded", "answered", "42", [_root(job_id)])
        assert job.finished_at is not None
        assert job.failure_reason is None
        assert ledger.snapshot(s, job_id) == (1000, 0, 0)  # the finish released the refusal reserve
    with pytest.raises(ValueError, match="not a terminal job status"), session_scope(db) as s:
        repository.finish_job(s, job_id, status="running")


def test_orm_writer_with_stale_version_is_rejected(db: Factory) -> None:
    from sqlalchemy.orm.exc import StaleDataError

    job_id = new_job(db, 1000)
    stale = db()
    job = stale.get(Job, job_id)
    assert job is not None
    stale.commit()  # end the read (on SQLite an open transaction holds the write lock); keep the object
    with session_scope(db) as s:
        repository.start_job(s, job_id)
    job.response = "overwrite"
    with pytest.raises(StaleDataError):
        stale.commit()
    stale.rollback()
    stale.close()


# -- graph -------------------------------------------------------------------------------------------------------
def test_insert_nodes_is_idempotent_and_graph_round_trips(db: Factory) -> None:
    job = new_job(db, 1000)
    root = _root(job)
    a, b = _thought(job, (root,), 0), _thought(job, (root,), 1)
    merge = _thought(job, (a.id, b.id), 0, depth=2)
    answer = Node(id=node_id(job, NodeKind.ANSWER, (merge.id,)), kind=NodeKind.ANSWER, parents=(merge.id,), depth=3)
    batch = [PlannedNode(a, prompt=[{"role": "user", "content": "think"}]), b, PlannedNode(merge, action="merge")]
    with session_scope(db) as s:
        assert repository.insert_nodes(s, job, batch) == [a.id, b.id, merge.id]
    with session_scope(db) as s:
        assert repository.insert_nodes(s, job, batch) == []  # redelivered planning step
        assert repository.insert_nodes(s, job, [b, answer]) == [answer.id]
        assert repository.insert_nodes(s, job, []) == []
    with session_scope(db) as s:
        assert s.execute(select(func.count()).select_from(NodeRow).where(NodeRow.job_id == job)).scalar_one() == 5
        assert s.execute(select(func.count()).select_from(Edge).where(Edge.job_id == job)).scalar_one() == 5
        graph = reads.load_graph(s, job)
        assert [n.id for n in graph] == [root, a.id, b.id, merge.id, answer.id]
        assert graph[merge.id].parents == tuple(sorted((a.id, b.id)))
        assert [n.id for n in graph.lineage(answer.id)] == [root, a.id, b.id, merge.id, answer.id]
        assert graph[a.id].est_tokens == 120
        rows = {r.id: r for r in repository.load_nodes(s, job)}
        assert rows[merge.id].action == "merge"
        assert rows[a.id].action == "think"
        assert rows[answer.id].action == "answer"
        assert rows[root].action == "scan"
        assert rows[a.id].prompt == [{"role": "user", "content": "think"}]


def test_insert_rejects_parents_of_another_job(db: Factory) -> None:
    job1, job2 = new_job(db, 100), new_job(db, 100)
    foreign = _thought(job2, (_root(job1),))
    with pytest.raises(GraphError), session_scope(db) as s:
        repository.insert_nodes(s, job2, [foreign])
    missing = _thought(job2, ("nope",))
    with pytest.raises((GraphError, IntegrityError)), session_scope(db) as s:
        repository.insert_nodes(s, job2, [missing])
    with session_scope(db) as s:
        assert len(reads.load_graph(s, job2)) == 1


# -- leases and results ------------------------------------------------------------------------------------------
def test_claim_lease_and_fenced_results(db: Factory) -> None:
    job = new_job(db, 1000)
    node = _thought(job, (_root(job),))
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    with session_scope(db) as s:
        repository.insert_nodes(s, job, [node])
        assert repository.claim_node(s, job, node.id, lease_seconds=LEASE, now=t0) == 1
        assert repository.claim_node(s, job, node.id, lease_seconds=LEASE, now=t0 + timedelta(seconds=10)) is None
        assert repository.find_stuck_nodes(s, now=t0 + timedelta(seconds=10)) == []
        stuck = repository.find_stuck_nodes(s, now=t0 + timedelta(seconds=31), job_id=job)
        assert [r.id for r in stuck] == [node.id]
        assert stuck[0].lease_expires_at == t0 + timedelta(seconds=LEASE)  # aware UTC on both back ends
        # the lease expired: a second worker takes over with attempt 2
        assert repository.claim_node(s, job, node.id, lease_seconds=LEASE, now=t0 + timedelta(seconds=31)) == 2
        # the first worker comes back: fenced out
        assert not repository.record_generation(
            s, job, node.id, text="old", model="m", tokens_prompt=1, tokens_completion=1, attempt=1
        )
        assert not repository.renew_lease(s, job, node.id, 1, lease_seconds=LEASE)
        assert repository.renew_lease(s, job, node.id, 2, lease_seconds=LEASE, now=t0 + timedelta(seconds=40))
        assert repository.record_generation(
            s,
            job,
            node.id,
            text="a thought",
            model="gemma",
            tokens_prompt=100,
            tokens_completion=40,
            prompt=[{"role": "user", "content": "x"}],
            gen_ai={"gen_ai.request.model": "gemma", "gen_ai.usage.input_tokens": 100},
            attempt=2,
        )
        assert repository.record_score(
            s,
            job,
            node.id,
            safety=0.8,
            utility=0.6,
            categories={"violence": 0.1},
            evaluator="minilm",
            tokens_eval=25,
            attempt=2,
        )
        assert not repository.finish_node(s, job, node.id, "done", attempt=1)
        assert repository.finish_node(s, job, node.id, "done", attempt=2)
        # redelivery after the finish changes nothing
        assert not repository.finish_node(s, job, node.id, "failed", failure_reason="late")
        assert not repository.record_score(
            s, job, node.id, safety=0.0, utility=0.0, categories={}, evaluator="x", tokens_eval=0
        )
        assert repository.claim_node(s, job, node.id, lease_seconds=LEASE, now=t0 + timedelta(hours=1)) is None
    with session_scope(db) as s:
        row = repository.get_node(s, node.id)
        assert row is not None
        assert (row.status, row.text, row.safety, row.utility, row.tokens, row.attempts) == (
            "done",
            "a thought",
            0.8,
            0.6,
            165,
            2,
        )
        assert row.gen_ai == {"gen_ai.request.model": "gemma", "gen_ai.usage.input_tokens": 100}
        assert row.lease_expires_at is None
        assert row.finished_at is not None
        assert row.started_at == t0  # the first claim's time, kept across re-claims
        loaded = reads.load_graph(s, job)[node.id]
        assert loaded.status is NodeStatus.DONE
        assert loaded.tokens == 165
        assert loaded.categories == {"violence": 0.1}
    with pytest.raises(ValueError, match="not a finished node status"), session_scope(db) as s:
        repository.finish_node(s, job, node.id, "running")


def test_max_attempts_and_prune(db: Factory) -> None:
    job = new_job(db, 1000)
    a, b = _thought(job, (_root(job),), 0), _thought(job, (_root(job),), 1)
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    with session_scope(db) as s:
        repository.insert_nodes(s, job, [a, b])
        assert repository.claim_node(s, job, a.id, lease_seconds=1, now=t0, max_attempts=1, max_crashes=1) == 1
        later = t0 + timedelta(seconds=5)  # the lease ran out: a crash, and the one crash allowed is used up
        assert repository.claim_node(s, job, a.id, lease_seconds=1, now=later, max_attempts=1, max_crashes=1) is None
        assert repository.finish_node(s, job, a.id, "failed", failure_reason="gave up after 1 attempt")
        assert repository.prune_node(s, job, b.id, "path safety 0.2 < tau 0.5")
        assert not repository.prune_node(s, job, a.id, "already failed")
        graph = reads.load_graph(s, job)
        assert graph[b.id].status is NodeStatus.PRUNED
        assert graph[b.id].prune_reason == "path safety 0.2 < tau 0.5"
        assert graph[a.id].failure_reason == "gave up after 1 attempt"


def test_count_in_flight_and_cancel(db: Factory) -> None:
    job = new_job(db, 1000)
    kids = [_thought(job, (_root(job),), i) for i in range(3)]
    with session_scope(db) as s:
        repository.start_job(s, job)
        repository.insert_nodes(s, job, kids)
        assert repository.count_in_flight(s, job) == 4  # root + 3
        repository.claim_node(s, job, kids[0].id, lease_seconds=LEASE)
        repository.finish_node(s, job, _root(job), "done")
        assert repository.count_in_flight(s, job) == 3
        for k in kids:
            ledger.reserve(s, job, k.id, "generate", 100)
    with session_scope(db) as s:
        assert repository.cancel_job(s, job, reason="cancelled by user")
        assert not repository.cancel_job(s, job)
    with session_scope(db) as s:
        assert repository.count_in_flight(s, job) == 0
        assert ledger.snapshot(s, job) == (1000, 0, 0)
        graph = reads.load_graph(s, job)
        assert all(graph[k.id].status is NodeStatus.FAILED for k in kids)
        assert repository.claim_node(s, job, kids[1].id, lease_seconds=LEASE) is None  # job no longer active
        assert not repository.record_generation(
            s, job, kids[0].id, text="late", model="m", tokens_prompt=1, tokens_completion=1
        )
        # the in-flight call still settles: its tokens were spent
        assert ledger.settle(s, job, kids[0].id, "generate", 90) == 90
        job_row = repository.get_job(s, job)
        assert job_row is not None
        assert job_row.status == "cancelled"
        assert job_row.failure_reason == "cancelled by user"


# -- concurrency (real threads; on Postgres each has its own connection) ------------------------------------------
def _race(n: int, fn: object) -> list[object]:
    results: list[object] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=60)
            results.append(fn(i))  # type: ignore[operator]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    return results


def test_concurrent_claims_have_one_winner(db: Factory) -> None:
    job = new_job(db, 1000)
    node = _thought(job, (_root(job),))
    with session_scope(db) as s:
        repository.insert_nodes(s, job, [node])
    results = _race(
        16, lambda i: run_in_transaction(db, lambda s: repository.claim_node(s, job, node.id, lease_seconds=LEASE))
    )
    assert sorted(results, key=lambda r: r is None) == [1] + [None] * 15
    with session_scope(db) as s:
        row = repository.get_node(s, node.id)
        assert row is not None
        assert row.attempts == 1
        assert row.status == "running"


def test_concurrent_planning_inserts_once(db: Factory) -> None:
    job = new_job(db, 1000)
    kids = [_thought(job, (_root(job),), i) for i in range(3)]
    merge = _thought(job, tuple(k.id for k in kids), 0, depth=2)
    results = _race(12, lambda i: run_in_transaction(db, lambda s: repository.insert_nodes(s, job, [*kids, merge])))
    assert sorted(len(r) for r in results) == [0] * 11 + [4]  # type: ignore[arg-type]
    with session_scope(db) as s:
        assert len(reads.load_graph(s, job)) == 5
        assert s.execute(select(func.count()).select_from(Edge).where(Edge.job_id == job)).scalar_one() == 6


def test_fan_in_exactly_one_finisher_sees_zero(db: Factory) -> None:
    """N workers finish the last N in-flight nodes at once; exactly one of them sees the count reach zero."""
    job = new_job(db, 1000)
    kids = [_thought(job, (_root(job),), i) for i in range(8)]
    with session_scope(db) as s:
        repository.insert_nodes(s, job, kids)
        repository.finish_node(s, job, _root(job), "done")
        attempts = {k.id: repository.claim_node(s, job, k.id, lease_seconds=LEASE) for k in kids}

    def finish(i: int) -> int:
        def tx(s: Session) -> int:
            assert repository.finish_node(s, job, kids[i].id, "done", attempt=attempts[kids[i].id])
            return repository.count_in_flight(s, job)

        return run_in_transaction(db, tx)

    counts = _race(len(kids), finish)
    assert sorted(counts) == list(range(len(kids))), counts  # every finisher saw a distinct count
