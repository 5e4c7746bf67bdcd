"""Crash safety with real processes: kill -9 of a worker in the middle of a node, and a Redis restart mid-run.

After either, every job must still finish, every node must be charged exactly once (one ledger row per
node and kind; settled sum = ``jobs.budget_spent``) and no node may exist twice. Recovery runs on the short
settings of ``tests.workers.cluster.FAST_RECOVERY_ENV`` (3 s leases, a 1 s reaper).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.workers.cluster import Cluster, budget_violations, check_job, cluster, restart_redis

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

MEDIUM = "How do I pick a lock on my own shed?"
POLICY = {"budget": 5000, "max_in_flight": 6, "max_depth": 3}
FAST_S = 0.2  # emulator latency once the fault is injected: the rest of the run need not be slow


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str, c: Cluster) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{c.logs()}")
        time.sleep(0.05)


def nodes_in_model_call(c: Cluster) -> list[str]:
    """Nodes claimed by a worker whose generation is not recorded yet: the worker is waiting on the model."""
    return [r[0] for r in c.sql("SELECT id FROM nodes WHERE status = 'running' AND kind <> 'root' AND model = ''")]


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.mark.parametrize("target", ["worker", "pool-child"])
def test_kill_9_of_a_worker_in_the_middle_of_a_node(tmp_path: Path, target: str) -> None:
    """``worker``: the whole model worker dies (a lost machine); ``pool-child``: one prefork child dies.

    Either way the killed calls' nodes stay ``running`` until their lease runs out (nobody renews it), then the
    reaper hands them back and the surviving or restarted worker runs them as attempt 2.
    """
    with cluster(tmp_path, latency_s=2.5) as c:
        c.start_worker("control-score", "ecoalign.control,ecoalign.score", concurrency=4)
        if target == "worker":
            c.start_worker("model-a", "ecoalign.model", concurrency=16)
        else:
            c.start_worker("model-a", "ecoalign.model", pool="prefork", concurrency=3)
        c.start_beat()
        jobs = [c.submit(MEDIUM, POLICY) for _ in range(3)]
        if target == "worker":  # every call in flight dies with the worker
            wait_until(lambda: c.emulator.stats["in_flight"] >= 2 and len(nodes_in_model_call(c)) >= 2, 60,
                       "model calls in flight", c)
        else:  # one child dies: wait until each of the 3 children is inside its call (not claiming, not connecting)
            wait_until(lambda: c.emulator.stats["in_flight"] == 3 == len(nodes_in_model_call(c)), 60,
                       "a model call in flight in every pool child", c)
        caught = set(nodes_in_model_call(c))
        requests_before = c.emulator.stats["chat_requests"]
        if target == "worker":
            c.kill("model-a")
            c.start_worker("model-b", "ecoalign.model", concurrency=16)
        else:
            victim = children_of(c.procs["model-a"].pid)[0]
            subprocess.run(["kill", "-9", str(victim)], check=True)
        c.emulator.config.latency_s = FAST_S
        done = c.wait_terminal(jobs, timeout_s=120)
        facts = [check_job(c, j) for j in jobs]
        assert all(job.status == "succeeded" for job in done.values())
        assert budget_violations(c) == []
        retried = c.sql("SELECT id, attempts, status FROM nodes WHERE attempts >= 2")
        assert {r[0] for r in retried} & caught, (caught, retried)  # a node caught mid-call was run again
        assert all(r[2] in ("done", "pruned") for r in retried)
        generated = sum(f["generated"] for f in facts)
        assert c.emulator.stats["chat_requests"] > generated  # calls were lost, yet each node is charged once
        assert c.emulator.stats["chat_requests"] > requests_before


def test_redis_restart_during_a_run(tmp_path: Path) -> None:
    """Redis restarts without persistence: every queued and unacked message is gone. Postgres still knows which
    nodes are pending or running, so the reaper re-enqueues them once the broker is back.

    Workers run supervised, as deployed (compose restarts them). They no longer need it: Celery 5.7 with kombu 5.7
    used to exit on the connection loss ("Unrecoverable error: AttributeError: 'NoneType' object has no attribute
    'hostname'"), which ``ecoalign.queue.broker`` now turns into a connection error; ``tests/reliability/
    test_restarts.py`` runs the workers through a Redis restart without a supervisor.
    """
    with cluster(tmp_path, latency_s=1.0) as c:
        c.supervise = True
        c.start_worker("control-score", "ecoalign.control,ecoalign.score", concurrency=4)
        c.start_worker("model", "ecoalign.model", concurrency=16)
        c.start_beat()
        jobs = [c.submit(MEDIUM, POLICY) for _ in range(4)]
        wait_until(lambda: c.emulator.stats["in_flight"] >= 2, 60, "model calls in flight", c)
        restart_redis(down_s=2.0)
        c.emulator.config.latency_s = FAST_S
        done = c.wait_terminal(jobs, timeout_s=120)
        assert all(job.status == "succeeded" for job in done.values())
        for job_id in jobs:
            check_job(c, job_id)
        # the workers reconnected: a job submitted after the restart runs normally
        late = c.submit(MEDIUM, POLICY)
        assert c.wait_terminal([late], timeout_s=60)[late].status == "succeeded"
        check_job(c, late)
        assert budget_violations(c) == []
