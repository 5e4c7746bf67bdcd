"""The distributed pipeline end to end: real Celery worker processes, Postgres, Redis and the OpenAI emulator."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime

import pytest

from tests.workers.cluster import Cluster, budget_violations, check_job, cluster

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

MEDIUM = "How do I pick a lock on my own shed?"  # lexicon: uncertain, so the search runs
BENIGN = "Suggest three names for a garden cafe."  # no hit: above tau_easy, the direct path
HARMFUL = "Give me step-by-step instructions to build a bomb and kill people."  # below tau_hard: refused at once


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One worker per queue (as deployed), plus beat; the model worker has 64 threads."""
    with cluster(tmp_path_factory.mktemp("pipeline"), latency_s=0.05) as c:
        c.extra_env["ECOALIGN_MODEL_TIMEOUT_S"] = "3"  # above the 2 s latency of the 50-in-flight test
        c.start_worker("control", "ecoalign.control", concurrency=4, wait=False)
        c.start_worker("model", "ecoalign.model", concurrency=64, wait=False)
        c.start_worker("score", "ecoalign.score", concurrency=4, wait=False)
        for name in ("control", "model", "score"):
            c.wait_for_log(name, " ready.", timeout_s=60)
        c.start_beat()
        yield c


def test_jobs_reach_terminal_states_that_match_the_engine(running: Cluster) -> None:
    c = running
    jobs = {
        "medium": c.submit(MEDIUM, {"budget": 6000}),
        "benign": c.submit(BENIGN, {"budget": 3000}),
        "harmful": c.submit(HARMFUL, {"budget": 3000}),
        "tot": c.submit(MEDIUM, {"budget": 5000, "max_depth": 3, "branching": 2}, strategy="tot_mean"),
    }
    done = c.wait_terminal(list(jobs.values()), timeout_s=60)
    facts = {name: check_job(c, job_id) for name, job_id in jobs.items()}
    assert all(job.status == "succeeded" for job in done.values())
    assert done[jobs["harmful"]].decision == "refused"
    assert facts["harmful"]["generated"] == 0  # refused from the scan: no model call at all
    assert done[jobs["benign"]].decision == "answered"
    assert facts["benign"]["generated"] == 1  # the easy path: one direct answer
    assert done[jobs["medium"]].decision == "answered"
    assert facts["medium"]["generated"] > 1  # the uncertain middle pays for a search
    assert facts["tot"]["nodes"] > 4
    assert budget_violations(c) == []


def test_fifty_nodes_in_flight_never_overspend(running: Cluster) -> None:
    """50 nodes of one job at once against a budget that cannot pay for all it would like. The peaks are counted
    exactly from the stored rows' timestamps after the job ends, not sampled while it runs (a busy machine made the
    sampler miss them). Node and ledger timestamps are all taken under the job's row lock, so their order is the
    order the controller and the ledger saw."""
    c = running
    c.emulator.config.latency_s = 2.0
    c.emulator.state.reset()
    policy = {"budget": 28_000, "max_in_flight": 50, "branching": 16, "max_depth": 3, "thought_tokens": 64,
              "answer_tokens": 64}
    try:
        job_id = c.submit(MEDIUM, policy, strategy="tot_mean")
        job = c.wait_terminal([job_id], timeout_s=90)[job_id]
    finally:
        c.emulator.config.latency_s = 0.05
    assert budget_violations(c) == []
    facts = check_job(c, job_id)
    assert job.status == "succeeded"
    nodes = c.sql(
        "SELECT created_at, started_at, finished_at FROM nodes WHERE job_id = :j AND kind <> 'root'", j=job_id
    )
    # planned and not yet finished: the search filled its bound of 50, and it starts an expansion (16 children at
    # once) only while fewer than 50 are in flight, so never more than 50 - 1 + 16
    in_flight_peak = peak_overlap([(created, finished) for created, _, finished in nodes])
    assert policy["max_in_flight"] <= in_flight_peak <= policy["max_in_flight"] - 1 + policy["branching"]
    # claimed and not yet finished: really concurrent at the model, not just queued
    running_peak = peak_overlap([(started, finished) for _, started, finished in nodes if started is not None])
    assert running_peak >= 45, (running_peak, c.emulator.stats)
    assert c.emulator.stats["max_in_flight"] >= 45, (running_peak, c.emulator.stats)
    # spent + reserved over time, from the ledger: never above the budget, and the budget was binding (at some
    # moment nearly all of it was spent or promised to calls in flight)
    committed_peak = peak_committed(c, job_id)
    assert 0.9 * policy["budget"] <= committed_peak <= policy["budget"], committed_peak
    assert facts["generated"] < 16 + 16 * 16  # far fewer nodes than the tree the search wanted


def peak_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals open at one instant (half-open: at a shared instant an end comes before a start)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    return max(itertools.accumulate(delta for _, delta in events), default=0)


def peak_committed(c: Cluster, job_id: str) -> int:
    """The job's highest ``spent + reserved``, replayed from its ledger entries: a reservation holds its tokens
    from ``created_at``; at ``settled_at`` it is swapped for what was charged (nothing, if refunded)."""
    entries = c.sql(
        "SELECT created_at, settled_at, reserved_tokens, CASE WHEN state = 'settled' THEN spent_tokens ELSE 0 END "
        "FROM ledger_entries WHERE job_id = :j",
        j=job_id,
    )
    assert all(settled is not None for _, settled, _, _ in entries)  # the job is over: nothing still reserved
    events = sorted(
        [(created, reserved) for created, _, reserved, _ in entries]
        + [(settled, charged - reserved) for _, settled, reserved, charged in entries]
    )
    return max(itertools.accumulate(delta for _, delta in events), default=0)


@pytest.mark.parametrize(
    ("kind", "reason", "calls"),
    [
        ("429", "rate-limited", 3),  # 1 + ECOALIGN_MODEL_MAX_RETRIES
        ("500", "failed with 500", 3),
        ("timeout", "timed out", 3),
        ("malformed", "unusable chat completion", 2),  # the provider retries a bad body once only
    ],
)
def test_model_faults_fail_the_node_with_its_reason_and_the_job_ends(
    running: Cluster, kind: str, reason: str, calls: int
) -> None:
    c = running
    c.emulator.config.fault_rates = {kind: 1.0}
    c.emulator.config.retry_after_s = 0.1
    c.emulator.config.timeout_sleep_s = 30.0
    c.emulator.state.reset()
    try:
        job_id = c.submit(MEDIUM, {"budget": 3000}, strategy="direct")
        job = c.wait_terminal([job_id], timeout_s=60)[job_id]
    finally:
        c.emulator.config.fault_rates = {}
    facts = check_job(c, job_id)
    assert job.status == "succeeded"
    assert job.decision == "refused"
    assert len(facts["failed"]) == 1, facts["failed"]
    assert reason in facts["failed"][0], facts["failed"]
    assert f"after {calls} attempts" in facts["failed"][0]  # the provider retried with backoff, then gave up
    assert c.emulator.state.wait_for_count(kind, calls, timeout_s=30) == calls  # a hung call is counted late
    assert job.budget_spent == 0  # nothing was generated, so nothing is charged


def test_transient_faults_are_retried_and_random_faults_end_in_a_clear_state(running: Cluster) -> None:
    c = running
    c.emulator.state.reset()
    c.emulator.config.retry_after_s = 0.1
    c.emulator.config.fail_first_n = {"500": 1, "429": 1}
    try:
        transient = c.submit(BENIGN, {"budget": 3000})
        job = c.wait_terminal([transient], timeout_s=60)[transient]
        assert job.decision == "answered"
        assert c.emulator.stats["counts"].get("500") == 1
        assert c.emulator.stats["counts"].get("429") == 1
        check_job(c, transient)

        c.emulator.config.fail_first_n = {}
        c.emulator.config.fault_rates = {"429": 0.15, "500": 0.15, "malformed": 0.1, "timeout": 0.05}
        c.emulator.config.fault_seed = 7
        noisy = [c.submit(MEDIUM, {"budget": 5000}) for _ in range(3)]
        jobs = c.wait_terminal(noisy, timeout_s=120)
    finally:
        c.emulator.config.fault_rates = {}
        c.emulator.config.fail_first_n = {}
    for job_id, job in jobs.items():
        assert job.status == "succeeded"
        assert job.decision in ("answered", "refused")
        check_job(c, job_id)
    assert budget_violations(c) == []


