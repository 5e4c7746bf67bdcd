"""Chaos benchmark: the whole service under injected faults, and the invariants it must keep, as figures.

    python -m benchmarks.chaos                       # 500 jobs, 3 workers, 3 kill -9, 1 Redis and 1 Postgres restart
    python -m benchmarks.chaos --redis-url redis://127.0.0.1:6391/0 \\
        --pg-url postgresql+psycopg://postgres@127.0.0.1:5444/postgres --pg-cluster 15/chaos   # private servers

Brings up, on a fresh PostgreSQL database and an emptied Redis database: the API (``ecoalign serve``), N worker
processes (``ecoalign worker``, every queue), beat (``ecoalign beat``) and the OpenAI emulator with injected latency
and faults (HTTP 500s and hung requests). Two tenants submit jobs over HTTP (some with an ``Idempotency-Key`` and
resubmitted, some with bad bodies, a few cancelled while their calls are in flight) and tenant A runs a moderation
Batch. Meanwhile the fault schedule fires: ``kill`` (``kill -9`` of a random worker's process group, then started
again, as a supervisor would), ``redis`` (``SHUTDOWN NOSAVE`` and a new server: every queued message lost) and
``pg`` (``pg_ctlcluster … stop --mode fast`` then ``start``: every connection dropped). Each fault fires when that
fraction of the jobs is terminal (``kill@0.1`` = once 10 % are), so it lands mid-run on any machine.

Then it prints, from SQL and HTTP, the table of ``docs/reliability.md``, and exits 0 only if every invariant holds:
nothing lost, nothing charged twice, no budget overspent (job or tenant), no reservation left on a terminal job,
Σ node tokens = ledger = job spent on every terminal job, no 5xx and no unanswered request, no idempotency mismatch,
no cross-tenant read, and no process exit that nobody asked for.

The Redis and PostgreSQL it restarts are options (default: the machine's own, 127.0.0.1:6379 and cluster 15/main):
on a shared machine, point them at private servers (``redis-server --port P --save "" --daemonize yes``,
``pg_createcluster 15 chaos -p 5444 -- --auth=trust && pg_ctlcluster 15 chaos start``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from ecoalign.store import migrate, tenants
from ecoalign.store.db import make_engine, run_in_transaction, session_factory
from ecoalign.testing.emulator import EmulatorServer
from ecoalign.testing.services import DEFAULT_PG_URL, DEFAULT_REDIS_URL, PostgresServer, RedisServer

REPO = Path(__file__).resolve().parents[1]
TERMINAL = ("succeeded", "failed", "cancelled")
TEXTS = (
    "How do I pick a lock on my own shed?",  # uncertain for the heuristic scanner: a real search
    "What are three tips for growing tomatoes?",
    "How do I kill a Python process that hangs?",
    "Explain how volcanoes form, briefly.",
    "Give me steps to build a bomb and kill people",  # refused at the scan
)
STRATEGIES = ("ecoalign", "ecoalign", "ecoalign", "direct", "best_of_n")
BAD_BODIES: tuple[Any, ...] = (
    "{not json",
    {"messages": [{"role": "user", "content": "no policy"}]},
    {"messages": [{"role": "user", "content": "x"}], "policy": {"budget": -5}},
    {"messages": [], "policy": {"budget": 1000}},
    {"messages": [{"role": "user", "content": "x"}], "policy": {"budget": 1000}, "strategy": "nope"},
    {"messages": [{"role": "user", "content": [{"type": "image_url",
                                                 "image_url": {"url": "data:image/png;base64,%%"}}]}],
     "policy": {"budget": 1000}},
)
# Recovery bounds scaled for a run of minutes (docs/deploy.md has the production values).
CHAOS_ENV = {
    "ECOALIGN_EVALUATOR": "heuristic",
    "ECOALIGN_NODE_LEASE_S": "10",
    "ECOALIGN_REAPER_INTERVAL_S": "1",
    "ECOALIGN_DISPATCH_GRACE_S": "6",
    "ECOALIGN_STALL_S": "5",
    "ECOALIGN_TASK_SOFT_TIME_LIMIT_S": "40",
    "ECOALIGN_TASK_TIME_LIMIT_S": "45",
    "ECOALIGN_BROKER_VISIBILITY_TIMEOUT_S": "60",
    "ECOALIGN_BROKER_RESTORE_INTERVAL_S": "2",
    "ECOALIGN_MODEL_TIMEOUT_S": "3",
    "ECOALIGN_MODEL_MAX_RETRIES": "2",
    "ECOALIGN_MODEL_CONCURRENCY": "64",
    "ECOALIGN_DB_POOL_SIZE": "8",
    "ECOALIGN_DB_MAX_OVERFLOW": "8",
    "ECOALIGN_BATCH_STALL_S": "15",
}


# -- processes -------------------------------------------------------------------------------------------------------
@dataclass
class Managed:
    name: str
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes]


@dataclass
class Supervisor:
    """Starts the service's processes, kills and restarts them on request, and records every exit it did not ask
    for (then starts the process again, so the run goes on, but the exit fails the run)."""

    logdir: Path
    procs: dict[str, Managed] = field(default_factory=dict)
    unexpected: list[tuple[str, int]] = field(default_factory=list)
    kills: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = open(self.logdir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs[name] = Managed(name, argv, env, proc)

    def kill9(self, name: str) -> None:
        """``kill -9`` of the process group (a prefork parent and its children at once), then start it again."""
        with self.lock:
            managed = self.procs[name]
            with suppress(ProcessLookupError):
                os.killpg(managed.proc.pid, signal.SIGKILL)
            managed.proc.wait(timeout=30)
            self.kills += 1
            self.start(name, managed.argv, managed.env)

    def check(self) -> None:
        with self.lock:
            for name, managed in list(self.procs.items()):
                code = managed.proc.poll()
                if code is not None:
                    self.unexpected.append((name, code))
                    self.start(name, managed.argv, managed.env)

    def stop_all(self) -> None:
        with self.lock:
            for managed in self.procs.values():
                with suppress(ProcessLookupError):
                    os.killpg(managed.proc.pid, signal.SIGTERM)
            for managed in self.procs.values():
                try:
                    managed.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    with suppress(ProcessLookupError):
                        os.killpg(managed.proc.pid, signal.SIGKILL)
                    managed.proc.wait(timeout=10)

    def wait_for_log(self, name: str, needle: str, timeout_s: float = 90) -> None:
        path = self.logdir / f"{name}.log"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if path.exists() and needle in path.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not log {needle!r} within {timeout_s} s; see {path}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- HTTP side ---------------------------------------------------------------------------------------------------------
@dataclass
class Http:
    """Every request the benchmark makes, with what came back."""

    base: str
    statuses: Counter[int] = field(default_factory=Counter)
    unanswered: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, method: str, path: str, key: str, **kwargs: Any) -> httpx.Response | None:
        try:
            with httpx.Client(base_url=self.base, timeout=180) as client:
                response = client.request(method, path, headers={"Authorization": f"Bearer {key}",
                                                                 **kwargs.pop("headers", {})}, **kwargs)
        except httpx.HTTPError:
            with self.lock:
                self.unanswered += 1
            return None
        with self.lock:
            self.statuses[response.status_code] += 1
        return response

    @property
    def server_errors(self) -> int:
        return sum(n for code, n in self.statuses.items() if code >= 500)


@dataclass
class Submitted:
    jobs: dict[str, str] = field(default_factory=dict)  # job id -> tenant name
    accepted_at: dict[str, float] = field(default_factory=dict)
    idempotent: int = 0
    idempotency_mismatches: int = 0
    bad_bodies: int = 0
    bad_body_not_4xx: int = 0
    cancels: int = 0
    refused: Counter[int] = field(default_factory=Counter)  # 4xx answers to good bodies (e.g. 402 budget)
    lock: threading.Lock = field(default_factory=threading.Lock)


def job_body(rng: random.Random) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": rng.choice(TEXTS)}],
        "policy": {"budget": rng.choice((1500, 3000, 5000)), "max_depth": rng.choice((2, 3))},
        "strategy": rng.choice(STRATEGIES),
    }


def submit_one(i: int, args: argparse.Namespace, http: Http, keys: dict[str, str], out: Submitted) -> None:
    rng = random.Random(args.seed * 100_003 + i)
    tenant = "a" if rng.random() < 0.7 else "b"
    key = keys[tenant]
    if rng.random() < args.bad_fraction:
        bad = rng.choice(BAD_BODIES)
        content = bad if isinstance(bad, str) else json.dumps(bad)
        response = http.call("POST", "/v1/jobs", key, content=content, headers={"Content-Type": "application/json"})
        with out.lock:
            out.bad_bodies += 1
            if response is None or not 400 <= response.status_code < 500:
                out.bad_body_not_4xx += 1
        return
    body = job_body(rng)
    headers = {}
    idem = rng.random() < args.idempotent_fraction
    if idem:
        headers["Idempotency-Key"] = f"chaos-{args.seed}-{i}"
    response = http.call("POST", "/v1/jobs", key, json=body, headers=headers)
    if response is None:
        return
    if response.status_code != 202:
        with out.lock:
            out.refused[response.status_code] += 1
        return
    job_id = response.json()["id"]
    with out.lock:
        out.jobs[job_id] = tenant
        out.accepted_at[job_id] = time.monotonic()
    if idem:  # the client "did not hear" the answer: the same body again, then a different body, same key
        again = http.call("POST", "/v1/jobs", key, json=body, headers=headers)
        other = dict(body, strategy="direct" if body["strategy"] != "direct" else "ecoalign")
        conflict = http.call("POST", "/v1/jobs", key, json=other, headers=headers)
        same = again is not None and again.status_code in (200, 202) and again.json()["id"] == job_id
        with out.lock:
            out.idempotent += 1
            if not same or conflict is None or conflict.status_code != 409:
                out.idempotency_mismatches += 1
    if rng.random() < args.cancel_fraction:  # cancel while its calls are in flight
        time.sleep(rng.uniform(0.3, 1.5))
        cancelled = http.call("POST", f"/v1/jobs/{job_id}/cancel", key)
        with out.lock:
            out.cancels += cancelled is not None and cancelled.status_code == 200


def submit_all(args: argparse.Namespace, http: Http, keys: dict[str, str], out: Submitted) -> None:
    """Jobs at ``--rate`` per second from a pool of client threads (a slow answer does not slow the others)."""
    with ThreadPoolExecutor(args.clients) as pool:
        started = time.monotonic()
        futures = []
        for i in range(args.jobs):
            delay = started + i / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(submit_one, i, args, http, keys, out))
        for future in futures:
            future.result()


def moderation_lines(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    lines = [json.dumps({"custom_id": f"item-{i}", "method": "POST", "url": "/v1/moderations",
                         "body": {"input": rng.choice(TEXTS)}}) for i in range(n)]
    lines.insert(n // 3, '{"custom_id": "broken", "method": "POST", "url": "/v1/moder')
    lines.insert(n // 2, json.dumps({"custom_id": "wrong-url", "method": "POST", "url": "/v1/completions",
                                     "body": {"input": "x"}}))
    lines.append(json.dumps({"method": "POST", "url": "/v1/moderations", "body": {"input": "no id"}}))
    return lines


def start_batch(http: Http, key: str, lines: list[str]) -> str:
    upload = http.call("POST", "/v1/files", key, files={"file": ("input.jsonl", ("\n".join(lines) + "\n").encode())},
                       data={"purpose": "batch"})
    if upload is None or upload.status_code != 200:
        raise RuntimeError(f"file upload failed: {upload and upload.text}")
    batch = http.call("POST", "/v1/batches", key, json={"input_file_id": upload.json()["id"],
                                                         "endpoint": "/v1/moderations", "completion_window": "24h"})
    if batch is None or batch.status_code != 200:
        raise RuntimeError(f"batch create failed: {batch and batch.text}")
    return str(batch.json()["id"])


# -- SQL side ----------------------------------------------------------------------------------------------------------
JOB_FACTS = text("""
    SELECT j.id, j.status, j.tenant_id, j.budget_total, j.budget_spent, j.budget_reserved,
           EXTRACT(EPOCH FROM (j.finished_at - j.created_at)) AS latency_s,
           (SELECT COALESCE(SUM(n.tokens), 0) FROM nodes n WHERE n.job_id = j.id) AS node_tokens,
           (SELECT COUNT(*) FROM nodes n WHERE n.job_id = j.id AND n.status IN ('pending', 'running')) AS in_flight,
           (SELECT COALESCE(MAX(n.attempts), 0) FROM nodes n WHERE n.job_id = j.id) AS max_attempts,
           COALESCE(SUM(e.spent_tokens) FILTER (WHERE e.state = 'settled'), 0) AS ledger_spent,
           COALESCE(SUM(e.overrun_tokens) FILTER (WHERE e.state = 'settled'), 0) AS ledger_overrun,
           COUNT(e.id) FILTER (WHERE e.state = 'reserved') AS reserved_entries
    FROM jobs j LEFT JOIN ledger_entries e ON e.job_id = j.id
    GROUP BY j.id
""")
CHARGED_TWICE = text("""
    SELECT COUNT(*) FROM (SELECT job_id, node_id, kind FROM ledger_entries WHERE state = 'settled'
                          GROUP BY job_id, node_id, kind HAVING COUNT(*) > 1) AS twice
""")
NODE_OVERCHARGED = text("""
    SELECT COUNT(*) FROM nodes n JOIN ledger_entries e ON e.job_id = n.job_id AND e.node_id = n.id
    WHERE e.kind = 'generate' AND e.state = 'settled' AND e.spent_tokens + e.overrun_tokens > n.tokens
""")
TENANT_FACTS = text("""
    SELECT t.name, t.token_budget_total, t.tokens_spent, t.tokens_reserved,
           (SELECT COALESCE(SUM(e.spent_tokens), 0) FROM ledger_entries e
            WHERE e.tenant_id = t.id AND e.state = 'settled') AS ledger_spent
    FROM tenants t
""")
BATCH_ITEMS = text("SELECT status, COUNT(*) FROM batch_items WHERE batch_id = :b GROUP BY status")
POISON = text("SELECT COUNT(*) FROM nodes WHERE failure_reason LIKE 'poison%'")
LATE = text("""
    SELECT COUNT(*), COALESCE(SUM(n.tokens), 0) FROM nodes n JOIN jobs j ON j.id = n.job_id
    WHERE j.status = 'cancelled' AND n.status = 'failed' AND n.failure_reason LIKE 'job %' AND n.model <> ''
""")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


# -- the run -----------------------------------------------------------------------------------------------------------
@dataclass
class Fault:
    kind: str  # kill | redis | pg
    at: float  # fraction of the accepted jobs that are terminal
    fired_at_s: float | None = None


def parse_faults(spec: str) -> list[Fault]:
    faults = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        kind, _, at = item.partition("@")
        if kind not in ("kill", "redis", "pg") or not at:
            raise SystemExit(f"chaos: bad fault {item!r}: expected kill@F, redis@F or pg@F (F in 0..1)")
        faults.append(Fault(kind, float(at)))
    return sorted(faults, key=lambda f: f.at)


@contextmanager
def fresh_database(pg: PostgresServer) -> Iterator[str]:
    name = f"ecoalign_chaos_{uuid.uuid4().hex[:10]}"
    admin = make_engine(pg.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg.url).set(database=name).render_as_string(hide_password=False)
    finally:
        pg.start()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def terminal_fraction(factory: Any, ids: list[str]) -> float:
    if not ids:
        return 0.0
    try:
        with factory() as s:
            done = s.execute(text("SELECT COUNT(*) FROM jobs WHERE status IN ('succeeded', 'failed', 'cancelled')"
                                  " AND id = ANY(:ids)"), {"ids": ids}).scalar_one()
    except Exception:  # the database is restarting
        return -1.0
    return int(done) / len(ids)


def fire(fault: Fault, sup: Supervisor, rng: random.Random, workers: list[str], args: argparse.Namespace,
         redis_server: RedisServer, pg: PostgresServer) -> None:
    if fault.kind == "kill":
        sup.kill9(rng.choice(workers))
    elif fault.kind == "redis":
        redis_server.restart(down_s=args.down_s)
    else:
        pg.restart(down_s=args.down_s)


def run(args: argparse.Namespace) -> int:
    redis_server = RedisServer.from_url(args.redis_url)
    pg = PostgresServer(args.pg_url, *args.pg_cluster.split("/", 1))
    faults = parse_faults(args.faults)
    rng = random.Random(args.seed)
    logdir = Path(args.logdir or tempfile.mkdtemp(prefix="ecoalign-chaos-"))
    logdir.mkdir(parents=True, exist_ok=True)
    redis_server.start()
    broker_url = redis_server.url(args.redis_db)
    redis.Redis.from_url(broker_url).flushdb()
    wall_start = time.monotonic()
    with fresh_database(pg) as db_url, EmulatorServer(
        latency_s=args.latency_ms / 1000, jitter_s=args.jitter_ms / 1000, fault_seed=args.seed,
        fault_rates={"500": args.fail_500, "timeout": args.fail_timeout}, timeout_sleep_s=10.0,
    ) as emulator:
        migrate.upgrade(db_url)
        engine = make_engine(db_url, poolclass=NullPool)
        factory = session_factory(engine)
        keys = {}
        for name, total in (("a", args.tenant_a_budget), ("b", args.tenant_b_budget)):
            keys[name] = run_in_transaction(
                factory, lambda s, n=name, t=total: tenants.create_tenant_with_key(s, f"tenant-{n}",
                                                                                    token_budget_total=t)[2])
        env = {k: v for k, v in os.environ.items() if not k.startswith("ECOALIGN_")}
        env.update(CHAOS_ENV, ECOALIGN_DB_URL=db_url, ECOALIGN_BROKER_URL=broker_url,
                   ECOALIGN_MODEL_URL=emulator.base_url, ECOALIGN_MODEL=emulator.config.model,
                   PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""), PYTHONUNBUFFERED="1")
        cli = [sys.executable, "-m", "ecoalign.cli"]
        sup = Supervisor(logdir)
        port = free_port()
        workers = [f"worker-{i}" for i in range(args.workers)]
        try:
            sup.start("api", [*cli, "serve", "--host", "127.0.0.1", "--port", str(port)], env)
            for name in workers:
                sup.start(name, [*cli, "worker", "--pool", "threads", "--concurrency", str(args.threads),
                                 "--hostname", f"{name}@%h"], env)
            sup.start("beat", [*cli, "beat", "--schedule", str(logdir / "beat-schedule")], env)
            for name in workers:
                sup.wait_for_log(name, " ready.")
            sup.wait_for_log("api", "Application startup complete")
            http = Http(f"http://127.0.0.1:{port}")
            out = Submitted()
            batch_id = start_batch(http, keys["a"], moderation_lines(args.batch_lines, args.seed))
            submitter = threading.Thread(target=submit_all, args=(args, http, keys, out), daemon=True)
            run_start = time.monotonic()
            submitter.start()
            pending = list(faults)
            deadline = run_start + args.timeout_s
            while time.monotonic() < deadline:
                sup.check()
                with out.lock:
                    ids = list(out.jobs)
                fraction = terminal_fraction(factory, ids)
                expected = max(len(ids), 1) / max(args.jobs * (1 - args.bad_fraction), 1)
                # a fault fires once that share of all the jobs to come is terminal
                while pending and fraction >= 0 and fraction * min(expected, 1.0) >= pending[0].at:
                    fault = pending.pop(0)
                    fault.fired_at_s = time.monotonic() - run_start
                    print(f"[{fault.fired_at_s:6.1f} s] {fault.kind} at {fault.at:.0%} of the jobs terminal",
                          flush=True)
                    fire(fault, sup, rng, workers, args, redis_server, pg)
                if not submitter.is_alive() and fraction >= 1.0 and not pending:
                    break
                time.sleep(0.5)
            submitter.join(timeout=5)
            batch = None
            while time.monotonic() < deadline + 60:
                sup.check()
                answer = http.call("GET", f"/v1/batches/{batch_id}", keys["a"])
                if answer is not None and answer.status_code == 200 and answer.json()["status"] in (
                        "completed", "failed", "cancelled", "expired"):
                    batch = answer.json()
                    break
                time.sleep(1.0)
            run_s = time.monotonic() - run_start
            sup.check()
            report = measure(factory, http, keys, out, batch_id, batch, emulator, sup, faults, args,
                             run_s=run_s, wall_s=time.monotonic() - wall_start)
        finally:
            sup.stop_all()
            engine.dispose()
    print(f"logs: {logdir}")
    return 0 if report else 1


def measure(factory: Any, http: Http, keys: dict[str, str], out: Submitted, batch_id: str, batch: dict[str, Any] | None,
            emulator: EmulatorServer, sup: Supervisor, faults: list[Fault], args: argparse.Namespace, *,
            run_s: float, wall_s: float) -> bool:
    """Print the table; True if every invariant holds."""
    with factory() as s:
        facts = {row.id: row for row in s.execute(JOB_FACTS)}
        charged_twice = int(s.execute(CHARGED_TWICE).scalar_one()) + int(s.execute(NODE_OVERCHARGED).scalar_one())
        tenant_rows = list(s.execute(TENANT_FACTS))
        items = {str(k): int(v) for k, v in s.execute(BATCH_ITEMS, {"b": batch_id})}
        poison = int(s.execute(POISON).scalar_one())
        late_nodes, late_tokens = s.execute(LATE).one()
    accepted = list(out.jobs)
    known = [facts[j] for j in accepted if j in facts]
    terminal = [f for f in known if f.status in TERMINAL]
    by_status = Counter(f.status for f in terminal)
    lost = len(accepted) - len(terminal)
    job_over = sum(1 for f in known if f.budget_spent + f.budget_reserved > f.budget_total)
    tenant_over = sum(1 for t in tenant_rows if t.token_budget_total is not None
                      and t.tokens_spent + t.tokens_reserved > t.token_budget_total)
    tenant_mismatch = sum(1 for t in tenant_rows if t.tokens_spent != t.ledger_spent or t.tokens_reserved != 0)
    reserved_left = sum(1 for f in terminal if f.budget_reserved or f.reserved_entries)
    stranded = sum(1 for f in terminal if f.in_flight)
    sums_disagree = sum(1 for f in terminal if not (f.node_tokens == f.ledger_spent + f.ledger_overrun
                                                     and f.ledger_spent == f.budget_spent))
    overrun = sum(int(f.ledger_overrun) for f in terminal)
    latencies = sorted(float(f.latency_s) for f in terminal if f.status == "succeeded" and f.latency_s is not None)
    # HTTP: every job as its owner sees it, and as the other tenant sees it
    http_disagree = cross = 0
    other = {"a": "b", "b": "a"}
    for i, job_id in enumerate(accepted):
        owner = out.jobs[job_id]
        mine = http.call("GET", f"/v1/jobs/{job_id}", keys[owner])
        sql_status = facts[job_id].status if job_id in facts else None
        if mine is None or mine.status_code != 200 or mine.json()["status"] != sql_status:
            http_disagree += 1
        if i % 5 == 0:
            for path in (f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/graph"):
                theirs = http.call("GET", path, keys[other[owner]])
                cross += theirs is None or theirs.status_code != 404
    theirs = http.call("GET", f"/v1/batches/{batch_id}", keys["b"])
    cross += theirs is None or theirs.status_code != 404
    counts = (batch or {}).get("request_counts") or {}
    lines_total = int(counts.get("total", 0))
    lines_done = int(counts.get("completed", 0)) + int(counts.get("failed", 0))
    lines_submitted = args.batch_lines + 3
    lines_lost = lines_submitted - lines_done
    fired = Counter(f.kind for f in faults if f.fired_at_s is not None)
    stats = emulator.stats

    rows: list[tuple[str, Any, bool | None]] = [
        ("jobs submitted (accepted 202)", len(accepted), None),
        ("jobs terminal: succeeded / failed / cancelled",
         f"{by_status['succeeded']} / {by_status['failed']} / {by_status['cancelled']}", None),
        ("jobs lost (accepted, not terminal)", lost, lost == 0),
        ("batch lines submitted / terminal (completed + failed) / lost",
         f"{lines_submitted} / {lines_done} ({counts.get('completed', 0)} + {counts.get('failed', 0)}) / {lines_lost}",
         lines_lost == 0 and lines_total == lines_submitted and (batch or {}).get("status") == "completed"),
        ("batch items by status (SQL)", json.dumps(items, sort_keys=True), None),
        ("nodes charged twice", charged_twice, charged_twice == 0),
        ("budgets overspent: jobs / tenants", f"{job_over} / {tenant_over}", job_over == tenant_over == 0),
        ("tenant counters ≠ their ledger", tenant_mismatch, tenant_mismatch == 0),
        ("reservations left on terminal jobs", reserved_left, reserved_left == 0),
        ("nodes in flight on terminal jobs", stranded, stranded == 0),
        ("terminal jobs where Σ node tokens ≠ ledger ≠ job spent", sums_disagree, sums_disagree == 0),
        ("tokens over a budget (overrun, recorded, not charged)", overrun, None),
        ("HTTP answers: 5xx / no answer", f"{http.server_errors} / {http.unanswered}",
         http.server_errors == 0 and http.unanswered == 0),
        ("bad bodies sent / answered other than 4xx", f"{out.bad_bodies} / {out.bad_body_not_4xx}",
         out.bad_body_not_4xx == 0),
        ("good bodies refused (4xx, by status)", json.dumps(dict(out.refused)), None),
        ("idempotent resubmits / mismatches", f"{out.idempotent} / {out.idempotency_mismatches}",
         out.idempotency_mismatches == 0),
        ("jobs cancelled by the client", out.cancels, None),
        ("nodes whose call returned after the cancel (charged late, usage on the node) / their tokens",
         f"{late_nodes} / {late_tokens}", None),
        ("cross-tenant reads (not 404)", cross, cross == 0),
        ("jobs whose HTTP status ≠ SQL status", http_disagree, http_disagree == 0),
        ("faults fired: kill -9 / Redis restarts / Postgres restarts",
         f"{fired['kill']} / {fired['redis']} / {fired['pg']}", len(fired) == len({f.kind for f in faults})
         and sum(fired.values()) == len(faults)),
        ("process exits nobody asked for", len(sup.unexpected) and json.dumps(sup.unexpected), not sup.unexpected),
        ("nodes failed as poison", poison, None),
        ("model calls made / answered HTTP 500 / hung (emulator)",
         f"{stats['chat_requests']} / {stats['counts'].get('500', 0)} / {stats['counts'].get('timeout', 0)}", None),
        ("wall time / run time", f"{wall_s:.0f} s / {run_s:.0f} s", None),
        ("job latency p50 / p95 (succeeded, created → finished)",
         f"{percentile(latencies, 50):.1f} s / {percentile(latencies, 95):.1f} s", None),
    ]
    print("\n| measure | value | invariant |\n|---|---|---|")
    for label, value, ok in rows:
        mark = "" if ok is None else ("holds" if ok else "**BROKEN**")
        print(f"| {label} | {value} | {mark} |")
    return all(ok for _, _, ok in rows if ok is not None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=500, help="job submissions (good and bad bodies)")
    parser.add_argument("--rate", type=float, default=8.0, help="submissions per second")
    parser.add_argument("--clients", type=int, default=16, help="client threads submitting")
    parser.add_argument("--batch-lines", type=int, default=200, help="good lines of the moderation Batch (+3 bad)")
    parser.add_argument("--workers", type=int, default=3, help="worker processes (every queue, threads pool)")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker process")
    parser.add_argument("--faults", default="kill@0.15,redis@0.3,kill@0.45,pg@0.6,kill@0.75",
                        help="the fault schedule: kill|redis|pg @ fraction of the jobs terminal, comma-separated")
    parser.add_argument("--down-s", type=float, default=2.0, help="how long Redis / Postgres stay down")
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--jitter-ms", type=float, default=100.0)
    parser.add_argument("--fail-500", type=float, default=0.05, help="share of model calls answered HTTP 500")
    parser.add_argument("--fail-timeout", type=float, default=0.02, help="share of model calls that hang")
    parser.add_argument("--bad-fraction", type=float, default=0.05)
    parser.add_argument("--idempotent-fraction", type=float, default=0.1)
    parser.add_argument("--cancel-fraction", type=float, default=0.03)
    parser.add_argument("--tenant-a-budget", type=int, default=50_000_000)
    parser.add_argument("--tenant-b-budget", type=int, default=5_000_000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--timeout-s", type=float, default=900.0, help="give up waiting for the jobs after this")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="the Redis server to run on and restart")
    parser.add_argument("--redis-db", type=int, default=15, help="its database for the broker (emptied first)")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL,
                        help="a database on the PostgreSQL server to run on and restart (a fresh one is made)")
    parser.add_argument("--pg-cluster", default="15/main", help="that server's pg_ctlcluster VERSION/NAME")
    parser.add_argument("--logdir", default=None)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
