"""reads.GraphCache: a kept copy of a job's graph, brought up to date from changed rows, always equals a whole read."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.engine.graph import Node, NodeKind, NodeStatus, ThoughtGraph, node_id
from ecoalign.store import ledger, reads, repository
from ecoalign.store.db import make_engine, session_factory, session_scope

from .helpers import new_job

Factory = sessionmaker[Session]


def _state(graph: ThoughtGraph) -> list[dict[str, Any]]:
    return [dataclasses.asdict(n) for n in graph]


def _load(db: Factory, cache: reads.GraphCache, job: str) -> ThoughtGraph:
    """A controller's read (job row locked), and what a whole read in the same transaction sees."""
    with session_scope(db) as s:
        ledger.lock_job_row(s, job)
        graph = cache.load(s, job)
        assert _state(graph) == _state(reads.load_graph(s, job))
        return graph


def _thought(job: str, parent: str, ordinal: int, depth: int = 1) -> Node:
    return Node(id=node_id(job, NodeKind.THOUGHT, (parent,), ordinal), kind=NodeKind.THOUGHT, parents=(parent,),
                depth=depth, ordinal=ordinal, est_tokens=40)


@pytest.fixture
def pg_db(pg_clean_engine: Any) -> Factory:
    return session_factory(pg_clean_engine)


@dataclasses.dataclass
class Rig:
    """A fresh job (its root only) on Postgres and a graph cache of its own."""

    db: Factory
    cache: reads.GraphCache
    job: str
    root: str

    def load(self) -> ThoughtGraph:
        return _load(self.db, self.cache, self.job)


@pytest.fixture
def rig(pg_db: Factory) -> Rig:
    job = new_job(pg_db, 1000)
    return Rig(pg_db, reads.GraphCache(), job, node_id(job, NodeKind.ROOT, ()))


@pytest.mark.postgres
def test_the_copy_follows_every_kind_of_write_and_is_kept_not_rebuilt(rig: Rig) -> None:
    db, job, root = rig.db, rig.job, rig.root
    first = rig.load()
    a, b = _thought(job, root, 0), _thought(job, root, 1)
    with session_scope(db) as s:
        repository.insert_nodes(s, job, [a, b])
    assert rig.load() is first  # brought up to date in place: the same graph object

    # lock-free writes to in-flight nodes: a claim, a recorded generation
    with session_scope(db) as s:
        attempt = repository.claim_node(s, job, a.id, lease_seconds=30)
        assert attempt == 1
    with session_scope(db) as s:
        assert repository.record_generation(s, job, a.id, text="step one", model="m", tokens_prompt=3,
                                            tokens_completion=4, attempt=attempt)
    graph = rig.load()
    assert graph is first
    assert graph[a.id].status is NodeStatus.RUNNING
    assert graph[a.id].text == "step one"

    # settling writes (under the job lock): finish with scores, prune, a child of a finished node
    with session_scope(db) as s:
        assert repository.finish_node(s, job, a.id, NodeStatus.DONE, attempt=attempt,
                                      scores=repository.Scores(0.9, 0.5, {"violence": 0.1}, "h", 2))
        assert repository.prune_node(s, job, b.id, "dominated")
        repository.insert_nodes(s, job, [_thought(job, a.id, 0, depth=2)])
    graph = rig.load()
    assert graph is first
    assert len(graph) == 4
    assert graph[a.id].safety == 0.9
    assert graph[a.id].categories == {"violence": 0.1}
    assert graph[b.id].status is NodeStatus.PRUNED
    assert graph[b.id].prune_reason == "dominated"

    with session_scope(db) as s:  # cancelling fails every node in flight in one statement
        assert repository.cancel_job(s, job)
    graph = rig.load()
    assert graph is first
    assert not graph.in_flight()


@pytest.mark.postgres
def test_a_rolled_back_transaction_leaves_nothing_in_the_copy(rig: Rig) -> None:
    db, cache, job, root = rig.db, rig.cache, rig.job, rig.root
    rig.load()

    class Abort(Exception):
        pass

    def write_then_abort() -> None:
        with session_scope(db) as s:
            assert repository.finish_node(s, job, root, NodeStatus.DONE)
            assert cache.load(s, job)[root].status is NodeStatus.DONE  # the transaction sees its own write
            raise Abort

    with pytest.raises(Abort):
        write_then_abort()
    graph = rig.load()
    assert graph[root].status is NodeStatus.PENDING


@pytest.mark.postgres
def test_two_reads_in_one_transaction_share_the_copy_and_see_its_own_inserts(rig: Rig) -> None:
    db, cache, job, root = rig.db, rig.cache, rig.job, rig.root
    with session_scope(db) as s:
        ledger.lock_job_row(s, job)
        before = cache.load(s, job)
        repository.insert_nodes(s, job, [_thought(job, root, 0)], known_parents=before.ids())
        after = cache.load(s, job)
        assert after is before
        assert len(after) == 2
    assert rig.load() is before


@pytest.mark.postgres
def test_a_new_node_that_a_whole_read_would_not_put_last_makes_a_whole_read(rig: Rig) -> None:
    """Hosts' clocks differ: a node can be stored with a creation time before nodes already in the copy."""
    db, job, root = rig.db, rig.job, rig.root
    late = _thought(job, root, 1)
    with session_scope(db) as s:
        repository.insert_nodes(s, job, [late])
    first = rig.load()
    early = _thought(job, root, 0)
    with session_scope(db) as s:
        repository.insert_nodes(s, job, [early])
        s.execute(text("UPDATE nodes SET created_at = (SELECT created_at FROM nodes WHERE id = :late) "
                       "- interval '1 millisecond' WHERE id = :early"), {"late": late.id, "early": early.id})
    graph = rig.load()
    assert graph is not first
    assert [n.id for n in graph][1:] == [early.id, late.id]


@pytest.mark.postgres
def test_copies_beyond_the_size_are_dropped_oldest_first(pg_db: Factory) -> None:
    db, cache = pg_db, reads.GraphCache(size=1)
    one, two = new_job(db, 1000), new_job(db, 1000)
    first = _load(db, cache, one)
    _load(db, cache, two)
    assert _load(db, cache, one) is not first  # evicted by the second job: read whole again


def test_off_postgres_every_read_is_whole(db: Factory) -> None:
    cache = reads.GraphCache()
    job = new_job(db, 1000)
    first = _load(db, cache, job)
    second = _load(db, cache, job)
    if db.kw["bind"].dialect.name == "sqlite":
        assert second is not first


@pytest.mark.postgres
def test_a_lock_free_write_stamped_before_the_copy_but_committed_after_it_is_still_seen(rig: Rig) -> None:
    """Why nodes in flight are read every time: a claim draws its stamp when it runs, not when it commits, so a
    copy can hold a higher stamp (from a settled node) than a claim that was not yet visible when it was read."""
    db, job, root = rig.db, rig.job, rig.root
    a, b = _thought(job, root, 0), _thought(job, root, 1)
    with session_scope(db) as s:
        assert repository.finish_node(s, job, root, NodeStatus.DONE)
        repository.insert_nodes(s, job, [a, b])
    rig.load()
    claimer = db()
    try:
        assert repository.claim_node(claimer, job, a.id, lease_seconds=30) == 1  # stamped, not committed
        with session_scope(db) as s:
            assert repository.finish_node(s, job, b.id, NodeStatus.FAILED, failure_reason="x")  # a higher stamp
        assert rig.load()[a.id].status is NodeStatus.PENDING  # the claim is not visible yet
        claimer.commit()
    finally:
        claimer.close()
    assert rig.load()[a.id].status is NodeStatus.RUNNING


@pytest.mark.postgres
def test_a_read_inside_a_savepoint_is_whole_and_leaves_the_copy_alone(rig: Rig) -> None:
    db, cache, job, root = rig.db, rig.cache, rig.job, rig.root
    first = rig.load()
    with session_scope(db) as s:
        ledger.lock_job_row(s, job)
        assert cache.load(s, job) is first
        savepoint = s.begin_nested()
        assert repository.finish_node(s, job, root, NodeStatus.DONE)
        inside = cache.load(s, job)
        assert inside is not first
        assert inside[root].status is NodeStatus.DONE
        savepoint.rollback()
        assert cache.load(s, job)[root].status is NodeStatus.PENDING
    after = rig.load()
    assert after is first
    assert after[root].status is NodeStatus.PENDING


@pytest.mark.postgres
def test_a_transaction_closed_without_commit_gives_nothing_back(rig: Rig) -> None:
    db, cache, job, root = rig.db, rig.cache, rig.job, rig.root
    first = rig.load()
    session = db()
    try:
        ledger.lock_job_row(session, job)
        assert repository.finish_node(session, job, root, NodeStatus.DONE)
        assert cache.load(session, job)[root].status is NodeStatus.DONE
        session.close()  # abandoned: neither committed nor rolled back by the caller
        session.execute(text("SELECT 1"))
        session.commit()  # a later transaction of the same session object
    finally:
        session.close()
    again = rig.load()
    assert again is not first
    assert again[root].status is NodeStatus.PENDING


@pytest.mark.postgres
def test_copies_are_kept_per_engine(pg_db: Factory, pg_url: str) -> None:
    """A process that talks to several databases never brings one database's copy up to date from another."""
    cache = reads.GraphCache()
    job = new_job(pg_db, 1000)
    first = _load(pg_db, cache, job)
    other = make_engine(pg_url)
    try:
        assert _load(session_factory(other), cache, job) is not first
    finally:
        other.dispose()
    assert _load(pg_db, cache, job) is first
