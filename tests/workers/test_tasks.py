"""The task bodies in this process against the real Postgres and the emulator, with a recording "broker":
every message can be delivered twice, lost, or held back, to check idempotency and recovery step by step."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.content import Request
from ecoalign.engine.policy import Policy
from ecoalign.evaluators.heuristic import HeuristicNodeEvaluator, HeuristicScanner
from ecoalign.providers.openai_http import OpenAIChatProvider
from ecoalign.runtime import controller, nodework
from ecoalign.runtime.commit import commit
from ecoalign.runtime.services import Services
from ecoalign.settings import Settings
from ecoalign.store import reads, repository
from ecoalign.store.base import utcnow
from ecoalign.store.db import run_in_transaction, session_factory
from ecoalign.store.models import NodeRow
from ecoalign.testing.emulator import EmulatorServer
from tests.workers.cluster import Cluster, check_job
from workers import process, tasks

pytestmark = pytest.mark.postgres

MEDIUM = "How do I pick a lock on my own shed?"


@dataclass
class Broker:
    """Messages the tasks published, in order, instead of Redis."""

    queue: deque[tuple[str, tuple[Any, ...]]] = field(default_factory=deque)

    def names(self) -> list[str]:
        return [name for name, _ in self.queue]

    def take(self, name: str) -> tuple[Any, ...]:
        for i, (n, args) in enumerate(self.queue):
            if n == name:
                del self.queue[i]
                return args
        raise AssertionError(f"no {name} message in {self.names()}")


TASKS = {"advance": tasks.advance_job, "scan": tasks.scan_root, "generate": tasks.generate_node, "reap": tasks.reap}


@dataclass
class Rig:
    factory: sessionmaker[Session]
    broker: Broker
    emulator: EmulatorServer

    def run(self, name: str, *args: Any) -> Any:
        return TASKS[name].run(*args)

    def drain(self, *, duplicate: bool = False, limit: int = 2000) -> int:
        """Deliver every message (twice each with ``duplicate``) until none is left; returns deliveries."""
        n = 0
        while self.broker.queue:
            name, args = self.broker.queue.popleft()
            for _ in range(2 if duplicate else 1):
                self.run(name, *args)
                n += 1
            assert n < limit, "the tasks keep publishing"
        return n

    def submit(self, text: str = MEDIUM, strategy: str = "ecoalign", **policy: Any) -> str:
        job_id, _ = run_in_transaction(
            self.factory,
            lambda s: controller.submit(
                s, Request(text), Policy.from_dict({"budget": 5000, **policy}), strategy=strategy
            ),
        )
        return job_id

    def through_scan(self, job_id: str) -> None:
        """First controller run, then the scan (which runs the controller in its own commit)."""
        self.run("advance", job_id)
        self.run("scan", *self.broker.take("scan"))

    def cluster_view(self) -> Cluster:
        """``check_job`` wants a Cluster; only its session factory is used."""
        view = Cluster.__new__(Cluster)
        view.factory = self.factory
        return view

    def node(self, node_id: str) -> NodeRow:
        row = run_in_transaction(self.factory, lambda s: repository.get_node(s, node_id))
        assert row is not None
        return row



def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout_s`` (a deadline, not a guess at the machine's speed)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s:.0f} s waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def rig(pg_clean_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    """The tasks with a recording broker, one task per node, the controller in the commit that finishes a node."""
    broker = Broker()
    for name, task in TASKS.items():
        monkeypatch.setattr(task, "apply_async", lambda args=(), _n=name, **_: broker.queue.append((_n, tuple(args))))
    factory = session_factory(pg_clean_engine)
    settings = Settings(db_url=str(pg_clean_engine.url), evaluator="heuristic", node_lease_s=30, max_node_attempts=3,
                        max_node_crashes=5, dispatch_grace_s=30, stall_s=30)
    with EmulatorServer() as emulator:
        provider = OpenAIChatProvider(emulator.base_url, "ecoalign-emulator", max_retries=0)
        services = Services(provider, HeuristicScanner(), HeuristicNodeEvaluator(), closers=[provider.close])
        process.use(settings_=settings, factory=factory, services_=services)
        try:
            yield Rig(factory, broker, emulator)
        finally:
            process.reset()
            services.close()


def test_every_message_delivered_twice_changes_nothing(rig: Rig) -> None:
    job_id = rig.submit()
    rig.broker.queue.append(("advance", (job_id,)))
    rig.drain(duplicate=True)
    job = run_in_transaction(rig.factory, lambda s: repository.get_job(s, job_id))
    assert job is not None
    assert job.status == "succeeded"
    assert job.decision == "answered"
    facts = check_job(rig.cluster_view(), job_id)
    assert facts["max_attempts"] == 1  # a duplicate never even claimed a node
    assert rig.emulator.stats["chat_requests"] == facts["generated"]  # one model call per node, not two


def test_controller_runs_do_not_enqueue_a_pending_node_twice(rig: Rig) -> None:
    job_id = rig.submit()
    rig.run("advance", job_id)
    assert rig.broker.names() == ["scan"]
    for _ in range(3):  # more controller runs while the scan message waits in the queue
        rig.run("advance", job_id)
    assert rig.broker.names() == ["scan"]


def test_a_node_that_keeps_killing_its_worker_is_failed_as_poison_and_refunded(rig: Rig) -> None:
    """Crashes (the lease runs out) are not failures: ``max_node_attempts`` (3) crashes leave the node to run
    again; only ``max_node_crashes`` (5) of them fail it as poison."""
    job_id = rig.submit("Suggest three names for a garden cafe.", strategy="direct")
    rig.through_scan(job_id)
    job_node = rig.broker.take("generate")
    node_id = job_node[1]
    expire = update(NodeRow).where(NodeRow.id == node_id).values(lease_expires_at=utcnow() - timedelta(seconds=1))
    for attempt in (1, 2, 3, 4, 5):  # claim, then "die" in the model call: the lease runs out each time
        claimed = nodework.claim(rig.factory, job_id, node_id, lease_s=30, max_attempts=3, max_crashes=5)
        assert claimed is not None
        assert claimed.attempt == attempt
        run_in_transaction(rig.factory, lambda s: s.execute(expire))
        rig.run("reap")
        if attempt < 5:
            assert rig.broker.take("generate") == job_node
            assert rig.node(node_id).status == "pending"  # three crashes and more: not poison
    row = rig.node(node_id)
    assert (row.status, row.failures) == ("failed", 0)
    assert row.failure_reason.startswith("poison: gave up after 5 attempts lost to crashes")
    assert rig.broker.names() == ["advance"]  # the reaper asks the controller to look again
    rig.drain()
    job = run_in_transaction(rig.factory, lambda s: repository.get_job(s, job_id))
    assert job is not None
    assert job.status == "succeeded"
    assert job.decision == "refused"
    assert job.budget_spent == 0  # refunded: nothing was generated
    check_job(rig.cluster_view(), job_id)


def test_a_worker_that_dies_after_the_model_call_costs_one_charged_call(rig: Rig) -> None:
    """A node's task records nothing between the call and the finish: a worker that dies there loses the call
    (never charged); the next attempt calls the model again, and the node is charged once, for that call."""
    job_id = rig.submit("Suggest three names for a garden cafe.", strategy="direct")
    rig.through_scan(job_id)
    job_id_, node_id = rig.broker.take("generate")
    claimed = nodework.claim(rig.factory, job_id, node_id, lease_s=30)
    assert claimed is not None
    result = nodework.work_node(rig.factory, process.services(), claimed, node_id)
    assert isinstance(result, nodework.NodeResult)  # ... and the worker dies before committing it
    assert rig.emulator.stats["chat_requests"] == 1
    run_in_transaction(rig.factory, lambda s: s.execute(
        update(NodeRow).where(NodeRow.id == node_id).values(lease_expires_at=utcnow() - timedelta(seconds=1))))
    rig.run("reap")
    assert rig.broker.take("generate") == (job_id_, node_id)
    rig.run("generate", job_id_, node_id)
    assert rig.emulator.stats["chat_requests"] == 2
    row = rig.node(node_id)
    assert row.status == "done"
    assert row.attempts == 2
    rig.drain()
    check_job(rig.cluster_view(), job_id)  # every node charged exactly once, for what it cost
    job = run_in_transaction(rig.factory, lambda s: repository.get_job(s, job_id))
    assert job is not None
    assert job.status == "succeeded"
    assert job.budget_spent == row.tokens > 0  # one call charged, not two


class BrokenEvaluator(HeuristicNodeEvaluator):
    """An evaluator with a bug: every score raises."""

    def score_node(self, node: Any) -> Any:
        raise RuntimeError("evaluator bug")


def test_an_evaluator_crash_keeps_the_call_so_retries_do_not_call_the_model_again(rig: Rig) -> None:
    """An evaluator bug after a fresh call: the call is recorded before the node is handed back, so the retries
    score the stored text (no second call) and the failed node pays for its one call."""
    job_id = rig.submit("Suggest three names for a garden cafe.", strategy="direct")
    rig.through_scan(job_id)
    process.services().evaluator = BrokenEvaluator()
    for attempt in (1, 2, 3):
        args = rig.broker.take("generate")
        with pytest.raises(RuntimeError, match="evaluator bug"):
            rig.run("generate", *args)
        assert rig.node(args[1]).attempts == attempt
        if attempt < 3:  # the lease was ended at once: the next reaper pass re-enqueues it
            rig.run("reap")
    assert rig.emulator.stats["chat_requests"] == 1
    row = rig.node(args[1])
    assert (row.status, row.failures) == ("failed", 3)
    assert "gave up after 3 failures" in (row.failure_reason or "")
    assert "evaluator bug" in (row.failure_reason or "")
    rig.drain()
    job = run_in_transaction(rig.factory, lambda s: repository.get_job(s, job_id))
    assert job is not None
    assert job.status == "succeeded"
    assert job.decision == "refused"
    assert job.budget_spent == row.tokens_prompt + row.tokens_completion > 0  # the generation was paid for
    check_job(rig.cluster_view(), job_id)


def test_a_lost_message_is_replaced_by_the_reaper(rig: Rig) -> None:
    """After the scan the broker loses what was published next (the controller's message, or, inline, the
    generate message): once the job looks stalled and the dispatch marks run out, the reaper publishes again."""
    job_id = rig.submit("Suggest three names for a garden cafe.")
    rig.run("advance", job_id)
    rig.run("scan", *rig.broker.take("scan"))
    lost = rig.broker.names()
    rig.broker.queue.clear()
    rig.run("reap")
    assert rig.broker.names() == []  # too early: the dispatch marks and the stall timer still run
    old = utcnow() - timedelta(minutes=5)
    run_in_transaction(rig.factory, lambda s: s.execute(
        update(repository.JOBS).where(repository.JOBS.c.id == job_id).values(updated_at=old)))
    run_in_transaction(rig.factory, lambda s: s.execute(
        update(NodeRow).where(NodeRow.job_id == job_id, NodeRow.status == "pending").values(lease_expires_at=old)))
    rig.run("reap")
    assert rig.broker.names() == lost
    rig.drain()
    job = run_in_transaction(rig.factory, lambda s: repository.get_job(s, job_id))
    assert job is not None
    assert job.status == "succeeded"
    check_job(rig.cluster_view(), job_id)


def test_the_lease_keeper_renews_while_held_and_stops_after(rig: Rig) -> None:
    """A 1 s lease is renewed for as long as it is held (here until it has been pushed past twice its length);
    once released (or the process dies) renewals stop and it runs out. Both are waited for as conditions on the
    row with a deadline, so a slow machine only makes the test take longer."""
    from workers.process import LeaseKeeper

    job_id = rig.submit("Suggest three names for a garden cafe.")
    root = rig.node(repository.node_id(job_id, "root", ())).id
    attempt = nodework.claim(rig.factory, job_id, root, lease_s=1).attempt
    claimed_until = rig.node(root).lease_expires_at
    keeper = LeaseKeeper(rig.factory, lease_s=1)
    try:
        with keeper.hold(job_id, root, attempt):
            # renewals set now + 1 s: past claimed_until + 2 s means the hold outlived its lease by a second at least
            wait_until(lambda: rig.node(root).lease_expires_at > claimed_until + timedelta(seconds=2),
                       "the held lease renewed past twice its length")  # fmt: skip
        assert keeper.held() == {}
        wait_until(lambda: rig.node(root).lease_expires_at < utcnow(), "the released lease to run out")
    finally:
        keeper.stop()


def test_a_controller_bug_fails_the_job_instead_of_retrying_forever(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine step is a pure function of graph and ledger: if it raises once it raises again, so the job
    fails with the error as its reason (reservations released), and the node that was being scored still is."""
    job_id = rig.submit("Suggest three names for a garden cafe.")
    rig.through_scan(job_id)
    args = rig.broker.take("generate")
    real = controller._advance

    def broken(session: Session, job_id_: str, **_: Any) -> controller.Advance:
        raise ZeroDivisionError("engine bug")

    monkeypatch.setattr(controller, "_advance", broken)
    rig.run("generate", *args)
    assert rig.node(args[1]).status == "done"  # scored and settled despite the controller's failure
    assert rig.emulator.stats["chat_requests"] == 1  # finishing again without the controller made no new call
    rig.drain()
    monkeypatch.setattr(controller, "_advance", real)
    job = run_in_transaction(rig.factory, lambda s: repository.get_job(s, job_id))
    assert job is not None
    assert job.status == "failed"
    assert "controller error: ZeroDivisionError: engine bug" in (job.failure_reason or "")
    assert job.budget_reserved == 0


def test_a_call_in_flight_at_cancel_is_charged_and_shown_on_its_node(rig: Rig) -> None:
    """The call returns after the job was cancelled: the ledger charges it late, and its (failed) node carries the
    same usage, so Σ node tokens = ledger = job spent, as ``GET /v1/jobs/{id}/graph`` shows it."""
    job_id = rig.submit("Suggest three names for a garden cafe.", strategy="direct")
    rig.through_scan(job_id)
    _, node_id = rig.broker.take("generate")
    claimed = nodework.claim(rig.factory, job_id, node_id, lease_s=30)
    assert claimed is not None
    result = nodework.work_node(rig.factory, process.services(), claimed, node_id)  # the call is made ...
    assert isinstance(result, nodework.NodeResult)
    assert run_in_transaction(rig.factory, lambda s: repository.cancel_job(s, job_id))  # ... the job is cancelled
    assert rig.node(node_id).tokens == 0  # failed by the cancel, before its call came back
    assert not commit(rig.factory, result).finished  # the worker writes its outcome late
    row = rig.node(node_id)
    assert row.status == "failed"
    assert row.model
    assert row.tokens == result.spent > 0
    job = run_in_transaction(rig.factory, lambda s: repository.get_job(s, job_id))
    assert job is not None
    assert job.status == "cancelled"
    assert job.budget_spent == row.tokens
    assert job.budget_reserved == 0
    graph = run_in_transaction(rig.factory, lambda s: reads.load_graph(s, job_id))
    assert sum(n.tokens for n in graph) == job.budget_spent
    assert not commit(rig.factory, result).finished  # a redelivered late outcome changes nothing
    assert rig.node(node_id).tokens == row.tokens
    assert run_in_transaction(rig.factory, lambda s: repository.get_job(s, job_id)).budget_spent == row.tokens
    check_job(rig.cluster_view(), job_id)
