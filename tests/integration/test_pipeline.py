"""The distributed pipeline end to end: real Celery worker processes, Postgres, Redis and the OpenAI emulator."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

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
    """50 nodes of one job at once against a budget that cannot pay for all it would like; checked in SQL."""
    c = running
    c.emulator.config.latency_s = 2.0
    c.emulator.state.reset()
    violations: list[object] = []
    peak = {"in_flight": 0, "running": 0, "committed": 0}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            violations.extend(budget_violations(c))
            rows = c.sql(
                "SELECT count(*), count(*) FILTER (WHERE status = 'running'), "
                "(SELECT budget_spent + budget_reserved FROM jobs WHERE id = :j) FROM nodes "
                "WHERE job_id = :j AND status IN ('pending', 'running')",
                j=job_id,
            )
            peak["in_flight"] = max(peak["in_flight"], int(rows[0][0]))
            peak["running"] = max(peak["running"], int(rows[0][1]))
            peak["committed"] = max(peak["committed"], int(rows[0][2] or 0))
            time.sleep(0.05)

    policy = {"budget": 28_000, "max_in_flight": 50, "branching": 16, "max_depth": 3, "thought_tokens": 64,
              "answer_tokens": 64}
    try:
        job_id = c.submit(MEDIUM, policy, strategy="tot_mean")
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        job = c.wait_terminal([job_id], timeout_s=90)[job_id]
    finally:
        stop.set()
        c.emulator.config.latency_s = 0.05
    watcher.join(5)
    assert violations == []
    assert budget_violations(c) == []
    facts = check_job(c, job_id)
    assert job.status == "succeeded"
    assert peak["in_flight"] >= 50, peak
    # really concurrent at the model, not just queued
    assert peak["running"] >= 45 and c.emulator.stats["max_in_flight"] >= 45, (peak, c.emulator.stats)
    # the budget was binding: at some moment nearly all of it was spent or promised to calls in flight
    assert peak["committed"] >= 0.9 * policy["budget"], peak
    assert facts["generated"] < 16 + 16 * 16  # far fewer nodes than the tree the search wanted


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
    assert job.status == "succeeded" and job.decision == "refused"  # the template refusal stands in
    assert len(facts["failed"]) == 1 and reason in facts["failed"][0], facts["failed"]
    assert f"after {calls} attempts" in facts["failed"][0]  # the provider retried with backoff, then gave up
    assert c.emulator.stats["counts"].get(kind) == calls
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
        assert c.emulator.stats["counts"].get("500") == 1 and c.emulator.stats["counts"].get("429") == 1
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
        assert job.status == "succeeded" and job.decision in ("answered", "refused")
        check_job(c, job_id)
    assert budget_violations(c) == []


