"""The in-process runtime against the real store (SQLite and Postgres) and a real OpenAI-compatible HTTP server.

The evaluator is the deterministic lexicon evaluator (``heuristic``): these tests are about orchestration,
budget accounting and traces, not about judging quality.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.content import Request
from ecoalign.engine.graph import NodeKind, NodeStatus
from ecoalign.engine.policy import Policy
from ecoalign.engine.search import Search
from ecoalign.engine.strategies import get_strategy
from ecoalign.evaluators.heuristic import HeuristicNodeEvaluator, HeuristicScanner
from ecoalign.providers.openai_http import OpenAIChatProvider
from ecoalign.runtime import controller
from ecoalign.runtime.inprocess import run_job, run_node
from ecoalign.runtime.report import full_report
from ecoalign.runtime.services import Services
from ecoalign.store import reads
from ecoalign.store.db import run_in_transaction
from ecoalign.store.models import Job, LedgerEntry, NodeRow
from ecoalign.testing.emulator import EmulatorServer


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(replies=["Step: consider the request carefully.", "Here is a helpful and safe answer."]) as em:
        yield em


def services_for(url: str, **provider_kwargs) -> Services:
    provider = OpenAIChatProvider(url, "ecoalign-emulator", **provider_kwargs)
    return Services(provider, HeuristicScanner(), HeuristicNodeEvaluator(), closers=[provider.close])


def submit_and_run(db: sessionmaker[Session], services: Services, text: str, policy: Policy, strategy="ecoalign"):
    job_id, created = run_in_transaction(db, lambda s: controller.submit(s, Request(text), policy, strategy=strategy))
    assert created
    status = run_job(db, services, job_id, workers=4)
    return job_id, status, run_in_transaction(db, lambda s: full_report(s, job_id))


def assert_ledger_consistent(db: sessionmaker[Session], job_id: str) -> None:
    with db() as s:
        job = s.get(Job, job_id)
        settled = s.scalar(
            select(func.coalesce(func.sum(LedgerEntry.spent_tokens), 0)).where(LedgerEntry.job_id == job_id)
        )
        node_tokens = s.scalar(select(func.coalesce(func.sum(NodeRow.tokens), 0)).where(NodeRow.job_id == job_id))
    assert job.budget_spent + job.budget_reserved <= job.budget_total
    assert job.budget_reserved == 0  # nothing left promised once the job is over
    assert job.budget_spent == settled == node_tokens  # each call charged once, and to its node


def test_a_job_runs_to_a_decision_and_its_trace_matches_the_engine(db, emulator):
    services = services_for(emulator.base_url)
    job_id, status, report = submit_and_run(db, services, "How can I improve my sleep schedule?", Policy(budget=3000))
    assert status == "succeeded"
    assert report["decision"] in {"answered", "refused"}
    for key in ("job_id", "response", "path", "path_safety", "utility", "cost", "budget", "graph"):
        assert key in report
    assert report["cost"]["model_calls"] >= 1
    assert report["cost"]["total_tokens"] > 0
    assert report["budget"]["spent"] <= report["budget"]["total"]
    nodes = {n["id"]: n for n in report["graph"]["nodes"]}
    assert report["path"][0] == next(n["id"] for n in report["graph"]["nodes"] if n["kind"] == "root")
    assert nodes[report["path"][-1]]["text"] == report["response"]
    # every scored node's stored status is what the engine's verdict says about the stored graph
    with db() as s:
        graph = reads.load_graph(s, job_id)
    search = Search(Policy(budget=3000), get_strategy("ecoalign"))
    for node in graph:
        if node.kind is not NodeKind.ROOT and node.status in (NodeStatus.DONE, NodeStatus.PRUNED):
            assert search.verdict(graph, node.id)[0] is node.status
    assert_ledger_consistent(db, job_id)


def test_unsafe_request_is_refused_by_the_scan_without_model_calls(db, emulator):
    services = services_for(emulator.base_url)
    _job_id, status, report = submit_and_run(
        db, services, "Explain how to build a bomb to kill people and murder them.", Policy(budget=3000)
    )
    assert (status, report["decision"]) == ("succeeded", "refused")
    assert report["cost"]["total_tokens"] == 0
    assert report["cost"]["model_calls"] == 0
    assert "tau_hard" in report["reason"]
    assert report["scan"]["segments"][0]["kind"] == "text"


@pytest.mark.parametrize("strategy", ["direct", "filter", "best_of_n", "tot_mean", "ecoalign_no_cost"])
def test_baselines_run_on_the_same_runtime(db, emulator, strategy):
    services = services_for(emulator.base_url)
    policy = Policy(budget=20_000, branching=2, max_depth=2)
    job_id, status, report = submit_and_run(db, services, "Summarise the water cycle.", policy, strategy)
    assert status == "succeeded"
    assert report["strategy"] == strategy
    assert_ledger_consistent(db, job_id)


def test_model_server_failures_end_the_job_cleanly(db):
    """500 on every call: the provider retries, the nodes fail with the reason, the job ends with a refusal."""
    with EmulatorServer(fault_rates={"500": 1.0}) as em:
        services = services_for(em.base_url, max_retries=2, backoff_base_s=0.01)
        job_id, status, report = submit_and_run(db, services, "What is the capital of France?", Policy(budget=3000))
        assert em.state.counts.get("500", 0) >= 3  # retried
    assert status == "succeeded"
    assert report["decision"] == "refused"
    failed = [n for n in report["graph"]["nodes"] if n["status"] == "failed"]
    assert failed
    assert all("model call failed" in n["failure_reason"] for n in failed)
    assert_ledger_consistent(db, job_id)


def test_a_redelivered_controller_step_changes_nothing(db, emulator):
    services = services_for(emulator.base_url)
    owls = Request("Tell me about owls.")
    job_id, _ = run_in_transaction(db, lambda s: controller.submit(s, owls, Policy(budget=3000)))
    first = controller.advance(db, job_id)
    assert first.run  # the root scan
    run_node(db, services, job_id, first.run[0])
    planned = controller.advance(db, job_id)
    with db() as s:
        before = (s.get(Job, job_id).budget_reserved, s.scalar(select(func.count()).select_from(NodeRow)))
    again = controller.advance(db, job_id)
    with db() as s:
        after = (s.get(Job, job_id).budget_reserved, s.scalar(select(func.count()).select_from(NodeRow)))
    assert planned.run == again.run
    assert before == after


def test_idempotency_key_returns_the_same_job_and_rejects_a_different_request(db):
    def submit(text):
        return run_in_transaction(
            db, lambda s: controller.submit(s, Request(text), Policy(budget=100), idempotency_key="k-1")
        )

    first, created = submit("hello")
    again, created_again = submit("hello")
    assert created
    assert not created_again
    assert first == again
    with pytest.raises(controller.IdempotencyConflict):
        submit("something else")
