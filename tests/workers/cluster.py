"""A real distributed deployment for tests: Celery worker and beat *processes*, a fresh Postgres database, a
dedicated Redis database and an in-process OpenAI emulator. Nothing is mocked.

Every wait is bounded; on a timeout the assertion message carries the tail of every process log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from ecoalign.content import Request
from ecoalign.engine.graph import NodeKind, NodeStatus
from ecoalign.engine.policy import Policy
from ecoalign.engine.search import LedgerView
from ecoalign.runtime import controller
from ecoalign.runtime.jobspec import job_spec
from ecoalign.store import ledger, migrate, reads, repository
from ecoalign.store.db import make_engine, run_in_transaction, session_factory
from ecoalign.store.models import Job, LedgerEntry, LedgerState, NodeRow
from ecoalign.testing.emulator import EmulatorServer
from ecoalign.testing.services import RedisServer
from tests.conftest import _pg_reachable, temporary_pg_database

REPO = Path(__file__).resolve().parents[2]
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
TEST_REDIS_DB = int(os.environ.get("ECOALIGN_TEST_REDIS_DB", "13"))
TERMINAL = ("succeeded", "failed", "cancelled")

# Short bounds so that recovery happens within seconds (see docs/deploy.md for production values).
FAST_RECOVERY_ENV = {
    "ECOALIGN_EVALUATOR": "heuristic",
    "ECOALIGN_NODE_LEASE_S": "3",
    "ECOALIGN_MAX_NODE_ATTEMPTS": "4",
    "ECOALIGN_REAPER_INTERVAL_S": "1",
    "ECOALIGN_DISPATCH_GRACE_S": "4",
    "ECOALIGN_STALL_S": "3",
    "ECOALIGN_TASK_SOFT_TIME_LIMIT_S": "20",
    "ECOALIGN_TASK_TIME_LIMIT_S": "25",
    "ECOALIGN_BROKER_VISIBILITY_TIMEOUT_S": "30",
    "ECOALIGN_BROKER_RESTORE_INTERVAL_S": "2",
    "ECOALIGN_MODEL_TIMEOUT_S": "5",
    "ECOALIGN_MODEL_MAX_RETRIES": "2",
    "ECOALIGN_MODEL_CONCURRENCY": "64",
    "ECOALIGN_DB_POOL_SIZE": "8",
    "ECOALIGN_DB_MAX_OVERFLOW": "8",
}


SHARED_REDIS = RedisServer(REDIS_HOST, REDIS_PORT)


def redis_alive() -> bool:
    return SHARED_REDIS.alive()


def restart_redis(down_s: float = 1.0) -> None:
    """Stop Redis without saving (every queued message is lost), then start it again as CI does."""
    SHARED_REDIS.restart(down_s)


def ensure_redis() -> None:
    SHARED_REDIS.start()


def point_dispatch_at(broker_url: str) -> None:
    """Make this (test) process publish to the test broker (ecoalign.queue.dispatch uses the shared Celery app)."""
    from kombu import pools

    from workers.app import app

    if app.conf.broker_url == broker_url:
        return
    app.conf.broker_url = broker_url
    # Celery's ``app.pool`` is kombu's process-wide pool for that URL (``kombu.pools.connections``, keyed by the
    # URL): closing it alone would leave the closed pool in kombu's registry, to be handed back ("Acquire on closed
    # pool") when a later test points the app at that URL again. ``pools.reset`` closes and forgets them all.
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@dataclass
class Cluster:
    db_url: str
    broker_url: str
    emulator: EmulatorServer
    logdir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    factory: sessionmaker[Session] = field(init=False)
    # Restart a process that exits on its own, as a deployment's supervisor does (compose: restart policy).
    supervise: bool = False
    restarts: dict[str, int] = field(default_factory=dict)
    _argv: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.factory = session_factory(make_engine(self.db_url, poolclass=NullPool))

    # -- processes --------------------------------------------------------------------------------------------
    def env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ECOALIGN_")}
        env.update(FAST_RECOVERY_ENV)
        env.update(
            ECOALIGN_DB_URL=self.db_url,
            ECOALIGN_BROKER_URL=self.broker_url,
            ECOALIGN_MODEL_URL=self.emulator.base_url,
            ECOALIGN_MODEL=self.emulator.config.model,
            PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        self._argv[name] = (argv, env)
        log = open(self.logdir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs[name] = proc
        return proc

    def start_worker(
        self,
        name: str,
        queues: str = "ecoalign.control,ecoalign.model,ecoalign.score",
        *,
        pool: str = "threads",
        concurrency: int = 8,
        wait: bool = True,
        **env: str,
    ) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", queues, "-P", pool,
                "-c", str(concurrency), "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
                "--without-heartbeat", "-l", "INFO"]
        proc = self._spawn(name, argv, self.env(**env))
        if wait:
            self.wait_for_log(name, " ready.", timeout_s=60)
        return proc

    def start_beat(self, **env: str) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "celery", "-A", "workers.app", "beat", "-l", "INFO",
                "-s", str(self.logdir / "beat-schedule")]
        proc = self._spawn("beat", argv, self.env(**env))
        self.wait_for_log("beat", "beat: Starting", timeout_s=60)
        return proc

    def wait_for_log(self, name: str, needle: str, *, timeout_s: float) -> None:
        path = self.logdir / f"{name}.log"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if path.exists() and needle in path.read_text(errors="replace"):
                return
            if self.procs[name].poll() is not None:
                raise AssertionError(f"{name} exited with {self.procs[name].returncode}\n{self.logs()}")
            time.sleep(0.1)
        raise AssertionError(f"{name} did not log {needle!r} within {timeout_s} s\n{self.logs()}")

    def restart_exited(self) -> None:
        """Start again every process that exited without being killed by the test (supervision)."""
        for name, proc in list(self.procs.items()):
            if proc.poll() is not None:
                self.restarts[name] = self.restarts.get(name, 0) + 1
                self._spawn(name, *self._argv[name])

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Kill the process group (a prefork parent and its children) at once, like a lost machine."""
        proc = self.procs.pop(name)
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.kill(name)

    def logs(self, tail: int = 40) -> str:
        out = []
        for path in sorted(self.logdir.glob("*.log")):
            lines = path.read_text(errors="replace").splitlines()[-tail:]
            out.append(f"---- {path.name}\n" + "\n".join(lines))
        return "\n".join(out)

    # -- jobs ---------------------------------------------------------------------------------------------------
    def submit(self, text_: str, policy: dict[str, Any] | None = None, *, strategy: str = "ecoalign") -> str:
        from ecoalign.queue.dispatch import enqueue_advance

        job_id, _ = run_in_transaction(
            self.factory,
            lambda s: controller.submit(s, Request(text_), Policy.from_dict(policy or {}), strategy=strategy),
        )
        point_dispatch_at(self.broker_url)
        assert enqueue_advance(job_id)
        return job_id

    def job(self, job_id: str) -> Job:
        job = run_in_transaction(self.factory, lambda s: repository.get_job(s, job_id))
        assert job is not None
        return job

    def wait_terminal(
        self, job_ids: list[str], *, timeout_s: float, tick: Callable[[], None] | None = None
    ) -> dict[str, Job]:
        deadline = time.monotonic() + timeout_s
        while True:
            if tick is not None:
                tick()
            if self.supervise:
                self.restart_exited()
            jobs = {j: self.job(j) for j in job_ids}
            if all(job.status in TERMINAL for job in jobs.values()):
                return jobs
            if time.monotonic() > deadline:
                states = {j: (job.status, self.node_states(j)) for j, job in jobs.items()}
                raise AssertionError(f"jobs not terminal within {timeout_s} s: {states}\n{self.logs()}")
            time.sleep(0.1)

    def node_states(self, job_id: str) -> dict[str, int]:
        def _q(s: Session) -> dict[str, int]:
            rows = s.execute(
                select(NodeRow.status, func.count()).where(NodeRow.job_id == job_id).group_by(NodeRow.status)
            ).all()
            return {str(k): int(v) for k, v in rows}

        return run_in_transaction(self.factory, _q)

    def sql(self, statement: str, **params: Any) -> list[Any]:
        with self.factory() as s:
            return list(s.execute(text(statement), params).all())


@contextmanager
def private_services(db_prefix: str) -> Iterator[tuple[str, str]]:
    """A migrated temporary PostgreSQL database and a throw-away ``redis-server``: ``(db_url, redis_url)``; the
    test is skipped when either server is missing."""
    import pytest

    from tests.api.conftest import private_redis

    reason = _pg_reachable()
    if reason:
        pytest.skip(reason)
    with private_redis() as redis_url:
        if redis_url is None:
            pytest.skip("redis-server is not installed")
        with temporary_pg_database(db_prefix) as db_url:
            migrate.upgrade(db_url)
            yield db_url, redis_url


@contextmanager
def cluster(
    tmp_path: Path,
    *,
    redis_server: RedisServer = SHARED_REDIS,
    pg_base_url: str | None = None,
    **emulator_config: Any,
) -> Iterator[Cluster]:
    """A fresh migrated database, an emptied Redis database and a running emulator; processes stopped after.

    ``redis_server`` and ``pg_base_url``: the Redis and the PostgreSQL server to run on (default: the test ones).
    """
    reason = _pg_reachable(pg_base_url)
    if reason:
        import pytest

        pytest.skip(reason)
    redis_server.start()
    broker_url = redis_server.url(TEST_REDIS_DB)
    redis.Redis.from_url(broker_url).flushdb()
    with ExitStack() as stack:
        db_url = stack.enter_context(temporary_pg_database("ecoalign_workers", pg_base_url))
        migrate.upgrade(db_url)
        emulator = stack.enter_context(EmulatorServer(**emulator_config))
        logdir = tmp_path / "logs"
        logdir.mkdir(parents=True, exist_ok=True)
        c = Cluster(db_url, broker_url, emulator, logdir)
        try:
            yield c
        finally:
            c.stop_all()
            redis_server.start()
            c.factory.kw["bind"].dispose()


# -- what every finished job must satisfy ------------------------------------------------------------------------
def check_job(c: Cluster, job_id: str) -> dict[str, Any]:
    """The job is terminal, its ledger is exact, nothing is charged twice, and the engine agrees with the trace.

    Returns a few facts for the caller (node counts, attempts).
    """
    with c.factory() as s:
        job = repository.get_job(s, job_id)
        assert job is not None, job_id
        assert job.status in TERMINAL, job.status
        rows = repository.load_nodes(s, job_id)
        entries = ledger.entries(s, job_id)
        graph = reads.load_graph(s, job_id)
        spec = job_spec(job)
    # nothing left in flight, nothing reserved
    assert [r.id for r in rows if r.status in ("pending", "running")] == []
    assert job.budget_reserved == 0
    assert [e.id for e in entries if e.state == LedgerState.RESERVED.value] == []
    # every charge once: one entry per (node, kind), settled sum = the job's counter, within the budget
    keys = [(e.node_id, e.kind) for e in entries]
    assert len(keys) == len(set(keys))
    settled = [e for e in entries if e.state == LedgerState.SETTLED.value]
    assert sum(e.spent_tokens for e in settled) == job.budget_spent
    assert 0 <= job.budget_spent <= job.budget_total
    # the graph shows what was charged: Σ node tokens = Σ settled (charged + overrun), cancelled jobs included
    node_tokens = sum(r.tokens for r in rows)
    assert node_tokens == sum(e.spent_tokens + e.overrun_tokens for e in settled), (job_id, node_tokens, job.status)
    by_node = {e.node_id: e for e in entries if e.kind == "generate"}
    for r in rows:
        generated = r.kind != NodeKind.ROOT.value and r.model not in ("", "template")
        if generated and r.status in ("done", "pruned"):
            e = by_node[r.id]
            assert e.state == LedgerState.SETTLED.value, (r.id, e.state)
            assert e.spent_tokens + e.overrun_tokens == r.tokens, (r.id, e.spent_tokens, e.overrun_tokens, r.tokens)
    # no duplicate nodes: ids are unique (primary key) and so is every (kind, parents, ordinal)
    shapes = [(n.kind, n.parents, n.ordinal) for n in graph]
    assert len(shapes) == len(set(shapes))
    # the engine's verdicts, replayed on the stored graph, are the stored statuses
    search = spec.search()
    for n in graph:
        if n.kind is NodeKind.ROOT or n.status not in (NodeStatus.DONE, NodeStatus.PRUNED):
            continue
        assert search.verdict(graph, n.id) == (n.status, n.prune_reason), n.id
    if job.status == "succeeded":
        step = search.step(graph, LedgerView(job.budget_total, job.budget_spent, job.budget_reserved))
        assert step.outcome is not None, step.note
        assert step.outcome.decision == job.decision
        assert list(step.outcome.path) == list(job.path or [])
        assert graph[step.outcome.node_id].text == job.response
    return {
        "nodes": len(rows),
        "max_attempts": max((r.attempts for r in rows), default=0),
        "failed": [r.failure_reason for r in rows if r.status == "failed"],
        "generated": sum(1 for r in rows if r.model not in ("", "template")),
    }


def budget_violations(c: Cluster) -> list[Any]:
    """Jobs whose ``spent + reserved`` exceeds ``total`` right now, or whose counters disagree with the ledger."""
    return c.sql(
        """
        SELECT j.id, j.budget_total, j.budget_spent, j.budget_reserved,
               COALESCE(SUM(e.reserved_tokens) FILTER (WHERE e.state = 'reserved'), 0) AS ledger_reserved,
               COALESCE(SUM(e.spent_tokens) FILTER (WHERE e.state = 'settled'), 0) AS ledger_spent
        FROM jobs j LEFT JOIN ledger_entries e ON e.job_id = j.id
        GROUP BY j.id
        HAVING j.budget_spent + j.budget_reserved > j.budget_total
            OR COALESCE(SUM(e.reserved_tokens) FILTER (WHERE e.state = 'reserved'), 0) <> j.budget_reserved
            OR COALESCE(SUM(e.spent_tokens) FILTER (WHERE e.state = 'settled'), 0) <> j.budget_spent
        """
    )


def generation_entries(c: Cluster, job_id: str) -> list[LedgerEntry]:
    with c.factory() as s:
        return list(s.scalars(select(LedgerEntry).where(LedgerEntry.job_id == job_id)))
