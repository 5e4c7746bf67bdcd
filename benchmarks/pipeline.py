"""Throughput of the distributed pipeline against the bare ceiling of this machine, side by side in one run.

    python -m benchmarks.pipeline            # from the repository root; Postgres and Redis as for the tests

(a) bare ceiling: a minimal Celery task doing one conditional UPDATE and one INSERT in Postgres (benchmarks/bare.py),
    tasks/s, on the workers' Redis transport (ecoalign.queue.broker), and again on kombu's own for reference.
    (b) ecoalign's node ceiling with a zero-latency emulator, nodes/s (a node = one model call with its claim,
    generation record, scoring, settlement, verdict and controller run), and (b)/(a). (c) the emulator at
    L = 200 ms behind 16 concurrent slots (bound 16 / 0.2 s = 80 nodes/s), throughput as a fraction of the bound.
    (d) (a), (b) and (c) for 1 and 2 worker processes. Per-node orchestration overhead p50/p95: on an idle
    pipeline, the time from a node being planned to its verdict, minus the model call.

``--repeat N`` runs (a), (b) and (c) N times in turn for each process count and adds a row of medians: on a
machine whose speed drifts by a quarter from one minute to the next, a ratio from one pair of runs is noise-deep.

Rates are steady-state: nodes (or tasks) finished between the 10th and 90th percentile of finish times, over that
span, from the timestamps the workers wrote in Postgres. Workers use the threads pool, the heuristic evaluator
(ECOALIGN_EVALUATOR=heuristic: instant, so the figures are orchestration, not evaluation) and the emulator
(``python -m ecoalign.testing.emulator``) in its own process. Everything runs on this machine, sharing its cores.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

REPO = Path(__file__).resolve().parents[1]
PG_BASE = os.environ.get("ECOALIGN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BROKER = os.environ.get("ECOALIGN_BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")
REQUEST = "How do I pick a lock on my own shed?"  # uncertain for the heuristic scanner: a real search runs
POLICY = {"budget": 6000}
QUEUES = "ecoalign.control,ecoalign.model,ecoalign.score"
EXTRA_ENV: dict[str, str] = {}


@dataclass
class Rig:
    db_url: str
    logdir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ECOALIGN_")}
        env.update(
            ECOALIGN_DB_URL=self.db_url,
            ECOALIGN_BROKER_URL=BROKER,
            ECOALIGN_EVALUATOR="heuristic",
            ECOALIGN_MODEL="ecoalign-emulator",
            ECOALIGN_DB_POOL_SIZE="20",
            ECOALIGN_DB_MAX_OVERFLOW="10",
            PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
        )
        env.update(EXTRA_ENV)
        env.update(extra)
        return env

    def spawn(self, name: str, argv: list[str], env: dict[str, str], ready: str | None = None) -> None:
        log_path = self.logdir / f"{name}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.procs.append(proc)
        if ready is None:
            return
        deadline = time.monotonic() + 60
        while ready not in log_path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)

    def workers(self, app: str, n: int, threads: int, tag: str, queues: str | None = None, **env: str) -> None:
        for i in range(n):
            argv = [sys.executable, "-m", "celery", "-A", app, "worker", "-P", "threads", "-c", str(threads),
                    "-n", f"{tag}{i}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
                    "-l", "WARNING"]
            if queues:
                argv += ["-Q", queues]
            self.spawn(f"{tag}{i}", argv, self.env(**env), ready=None)
        time.sleep(0.5)
        # the workers log nothing at WARNING when ready: ask them
        from celery import Celery

        probe = Celery(broker=BROKER)
        deadline = time.monotonic() + 60
        while len(probe.control.ping(timeout=0.5) or []) < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{tag} workers did not answer a ping; see {self.logdir}")
        probe.close()

    def stop(self) -> None:
        for proc in self.procs:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.procs.clear()
        redis.Redis.from_url(BROKER).flushdb()


def admin() -> Engine:
    from ecoalign.store.db import make_engine

    return make_engine(PG_BASE, isolation_level="AUTOCOMMIT", poolclass=NullPool)


@contextmanager
def bench_database() -> Iterator[str]:
    from ecoalign.store import migrate

    name = f"ecoalign_bench_{uuid.uuid4().hex[:8]}"
    eng = admin()
    with eng.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_BASE).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with eng.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        eng.dispose()


@contextmanager
def emulator(port: int, latency_ms: float) -> Iterator[str]:
    argv = [sys.executable, "-m", "ecoalign.testing.emulator", "--port", str(port), "--latency-ms", str(latency_ms)]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/models", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


ANALYZE_EVERY_S = 20.0


@contextmanager
def autoanalyze(db_url: str) -> Iterator[bool]:
    """If the server runs with ``autovacuum = off``, ``ANALYZE`` the database every ``ANALYZE_EVERY_S`` seconds
    meanwhile, as autoanalyze would; yields whether it does.

    Without statistics, and without the cache invalidation an ``ANALYZE`` brings, the plans that psycopg's prepared
    statements got while the tables were nearly empty are kept as they grow: Postgres CPU per node doubled over
    12,000 nodes on such a server (docs/performance.md). A deployment runs autovacuum (the default)."""
    from ecoalign.store.db import make_engine

    eng = make_engine(db_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with eng.connect() as conn:
            if conn.execute(text("SHOW autovacuum")).scalar_one() != "off":
                yield False
                return
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(ANALYZE_EVERY_S):
                with eng.connect() as conn:
                    conn.execute(text("ANALYZE"))

        thread = threading.Thread(target=loop, name="autoanalyze", daemon=True)
        thread.start()
        try:
            yield True
        finally:
            stop.set()
            thread.join()
    finally:
        eng.dispose()


COMPONENTS = ("workers", "emulator", "postgres", "redis", "machine")


def cpu_seconds(rig: Rig) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each part of the rig, and by the whole machine."""
    used = dict.fromkeys(COMPONENTS, 0.0)
    workers = {proc.pid for proc in rig.procs}
    for proc in psutil.process_iter(["pid", "ppid", "name", "cmdline", "cpu_times"]):
        info = proc.info
        times = info["cpu_times"]
        if times is None:
            continue
        cmdline = " ".join(info["cmdline"] or [])
        if info["pid"] in workers or info["ppid"] in workers:
            part = "workers"
        elif "ecoalign.testing.emulator" in cmdline:
            part = "emulator"
        elif info["name"] == "postgres":
            part = "postgres"
        elif (info["name"] or "").startswith("redis-server"):
            part = "redis"
        else:
            continue
        used[part] += times.user + times.system
    machine = psutil.cpu_times()
    used["machine"] = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
    return used


def cpu_per_item(before: dict[str, float], after: dict[str, float], items: int) -> dict[str, float]:
    """Milliseconds of CPU per item (task or node), by component."""
    return {k: 1000 * (after[k] - before[k]) / max(items, 1) for k in COMPONENTS}


def steady_rate(times: list[float]) -> float:
    """Events per second between the 10th and 90th percentile of their times (ramp-up and tail cut off)."""
    times = sorted(times)
    if len(times) < 10:
        return float("nan")
    lo, hi = int(0.1 * len(times)), int(0.9 * len(times))
    span = times[hi] - times[lo]
    return (hi - lo) / span if span > 0 else float("nan")


# -- (a) the bare task -------------------------------------------------------------------------------------------
def run_bare(rig: Rig, processes: int, threads: int, tasks: int, *, stock: bool = False) -> BareRun:
    """(a): ``tasks`` bare tasks through ``processes`` workers; ``stock`` runs them on kombu's own Redis transport
    instead of ``ecoalign.queue.broker``'s (which the ecoalign workers use)."""
    from benchmarks import bare
    from ecoalign.store.db import make_engine

    eng = make_engine(rig.db_url, poolclass=NullPool)
    with eng.begin() as conn:
        for stmt in bare.SCHEMA:
            conn.execute(text(stmt))
        conn.execute(text("TRUNCATE bench_event"))
        conn.execute(text("DELETE FROM bench_counter"))
        conn.execute(
            text("INSERT INTO bench_counter (id, n, cap) SELECT g, 0, 1000000000 FROM generate_series(0, :r) g"),
            {"r": bare.ROWS - 1},
        )
    bare.app.conf.broker_url = BROKER
    env = {"ECOALIGN_BENCH_BARE_TRANSPORT": "stock"} if stock else {}
    rig.workers("benchmarks.bare", processes, threads, "bare", **env)
    cpu_before = cpu_seconds(rig)
    with bare.app.producer_or_acquire() as producer:
        for k in range(tasks):
            bare.touch.apply_async((k,), producer=producer)
    deadline = time.monotonic() + 600
    while True:
        with eng.connect() as conn:
            done = conn.execute(text("SELECT count(*) FROM bench_event")).scalar_one()
        if done >= tasks or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    cpu = cpu_per_item(cpu_before, cpu_seconds(rig), tasks)
    with eng.connect() as conn:
        times = [r[0].timestamp() for r in conn.execute(text("SELECT at FROM bench_event"))]
    rig.stop()
    eng.dispose()
    return BareRun(steady_rate(times), cpu)


@dataclass
class BareRun:
    rate: float
    cpu_ms: dict[str, float]  # CPU per task by component


# -- (b), (c): ecoalign nodes --------------------------------------------------------------------------------------
@dataclass
class NodeRun:
    rate: float
    nodes: int
    jobs: int
    wall_s: float
    overhead_ms: list[float]
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU per generated node by component


def submit_jobs(db_url: str, n: int) -> list[str]:
    from ecoalign.content import Request
    from ecoalign.engine.policy import Policy
    from ecoalign.queue.dispatch import enqueue_advance
    from ecoalign.runtime import controller
    from ecoalign.store.db import make_engine, run_in_transaction, session_factory
    from workers.app import app

    app.conf.broker_url = BROKER
    factory = session_factory(make_engine(db_url, poolclass=NullPool))
    ids = [
        run_in_transaction(factory, lambda s: controller.submit(s, Request(REQUEST), Policy.from_dict(POLICY)))[0]
        for _ in range(n)
    ]
    for job_id in ids:
        enqueue_advance(job_id)
    return ids


def wait_jobs(db_url: str, ids: list[str], timeout_s: float = 900) -> None:
    from ecoalign.store.db import make_engine

    eng = make_engine(db_url, poolclass=NullPool)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            with eng.connect() as conn:
                left = conn.execute(
                    text("SELECT count(*) FROM jobs WHERE id = ANY(:ids) AND status IN ('queued', 'running')"),
                    {"ids": ids},
                ).scalar_one()
            if left == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"{left} jobs still active after {timeout_s} s")
    finally:
        eng.dispose()


def node_stats(db_url: str, ids: list[str]) -> tuple[list[float], list[float]]:
    """(finish times of generated nodes, per-node overhead in ms = planned→verdict minus the model call)."""
    from ecoalign.store.db import make_engine

    eng = make_engine(db_url, poolclass=NullPool)
    with eng.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT created_at, finished_at, (gen_ai->>'ecoalign.latency_s')::float FROM nodes "
                "WHERE job_id = ANY(:ids) AND kind <> 'root' AND model NOT IN ('', 'template') "
                "AND finished_at IS NOT NULL"
            ),
            {"ids": ids},
        ).all()
    eng.dispose()
    finished = [r[1].timestamp() for r in rows]
    overhead = [((r[1] - r[0]).total_seconds() - (r[2] or 0.0)) * 1000 for r in rows]
    return finished, overhead


def run_nodes(rig: Rig, model_url: str, processes: int, threads: int, jobs: int, slots: int | None) -> NodeRun:
    extra = {"ECOALIGN_MODEL_URL": model_url}
    if slots is not None:  # the model server's slots: at most this many calls in flight, over all processes
        extra["ECOALIGN_MODEL_CONCURRENCY"] = str(slots // processes)
    rig.workers("workers.app", processes, threads, "eco", QUEUES, **extra)
    cpu_before = cpu_seconds(rig)
    started = time.monotonic()
    ids = submit_jobs(rig.db_url, jobs)
    wait_jobs(rig.db_url, ids)
    wall = time.monotonic() - started
    cpu_after = cpu_seconds(rig)
    rig.stop()
    finished, overhead = node_stats(rig.db_url, ids)
    return NodeRun(steady_rate(finished), len(finished), jobs, wall, overhead,
                   cpu_per_item(cpu_before, cpu_after, len(finished)))


def run_overhead(rig: Rig, model_url: str, jobs: int) -> list[float]:
    """One job at a time on an idle pipeline: what orchestration adds to each node."""
    rig.workers("workers.app", 1, 8, "idle", QUEUES, ECOALIGN_MODEL_URL=model_url)
    all_ids: list[str] = []
    for _ in range(jobs):
        ids = submit_jobs(rig.db_url, 1)
        wait_jobs(rig.db_url, ids)
        all_ids += ids
    rig.stop()
    return node_stats(rig.db_url, all_ids)[1]


def cpu_model() -> str:
    """The CPU's model name (figures from different machines of this workplace differ by 2x per core)."""
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def _figures(label: str, r: dict[str, Any], bound: float) -> tuple[Any, ...]:
    """One table row: (label, (a), (b), (b)/(a), (c), (c)/bound, (a) stock, (b)/(a) stock)."""
    a, a_stock, b, c = r["a"].rate, r["a_stock"].rate, r["b"].rate, r["c"].rate
    return (label, a, b, b / a, c, c / bound, a_stock, b / a_stock)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", default="1,2", help="worker process counts to measure (d)")
    parser.add_argument("--bare-tasks", type=int, default=4000)
    parser.add_argument("--jobs", type=int, default=60, help="jobs per node run (about 20 nodes each)")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker process for (a) and (b)")
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--slots", type=int, default=16)
    parser.add_argument("--idle-jobs", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=1,
                        help="run (a), (b) and (c) this many times in turn per process count; medians are printed too")
    parser.add_argument("--logdir", default=None)
    parser.add_argument("--set", action="append", default=[], metavar="ECOALIGN_X=V",
                        help="extra worker setting, e.g. ECOALIGN_NODE_LEASE_S=60 (repeatable)")
    args = parser.parse_args(argv)
    EXTRA_ENV.update(dict(item.split("=", 1) for item in args.set))
    counts = [int(p) for p in args.processes.split(",")]
    logdir = Path(args.logdir or tempfile.mkdtemp(prefix="ecoalign-bench-"))
    logdir.mkdir(parents=True, exist_ok=True)
    redis.Redis.from_url(BROKER).flushdb()
    bound = args.slots / (args.latency_ms / 1000.0)
    load_before = os.getloadavg()
    results: dict[tuple[int, int], dict[str, Any]] = {}  # by (processes, repeat)
    with bench_database() as db_url:
        rig = Rig(db_url, logdir)
        try:
            with autoanalyze(db_url) as analyzing, emulator(18761, 0.0) as fast_url, \
                    emulator(18762, args.latency_ms) as slow_url:
                for p in counts:
                    for r in range(1, args.repeat + 1):  # in turn, so a slow spell of the machine hits all four
                        a = run_bare(rig, p, args.threads, args.bare_tasks)
                        a_stock = run_bare(rig, p, args.threads, args.bare_tasks, stock=True)
                        b = run_nodes(rig, fast_url, p, args.threads, args.jobs, None)
                        c = run_nodes(rig, slow_url, p, args.slots // p + args.threads, args.jobs, args.slots)
                        results[(p, r)] = {"a": a, "a_stock": a_stock, "b": b, "c": c}
                        print(f"[{p} process(es), run {r}] a={a.rate:.1f} tasks/s (stock kombu {a_stock.rate:.1f})  "
                              f"b={b.rate:.1f} nodes/s ({b.nodes} nodes)  "
                              f"c={c.rate:.1f} nodes/s ({c.nodes} nodes)", flush=True)
                idle = run_overhead(rig, fast_url, args.idle_jobs)
        finally:
            rig.stop()
    print()
    print(f"pipeline benchmark — {os.cpu_count()} cores ({cpu_model()}), Postgres + Redis + emulator + workers on "
          "this machine")
    print(f"load average (1 min) before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}: other work on the "
          "machine shares the cores and lowers every figure")
    print(f"(c): emulator latency {args.latency_ms:.0f} ms, {args.slots} slots, bound {bound:.0f} nodes/s")
    if analyzing:
        print(f"this Postgres runs with autovacuum off: the benchmark ran ANALYZE every {ANALYZE_EVERY_S:.0f} s, as "
              "autoanalyze would (its CPU is in the Postgres column)")
    print()
    header = (f"{'worker processes':>16} | {'run':>6} | {'(a) bare tasks/s':>16} | {'(b) nodes/s':>11} | "
              f"{'(b)/(a)':>7} | {'(c) nodes/s':>11} | {'(c)/bound':>9} | {'(a) stock kombu':>15} | "
              f"{'(b)/(a) stock':>13}")
    print(header)
    print("-" * len(header))
    for p in counts:
        rows = [_figures(str(r), results[(p, r)], bound) for r in range(1, args.repeat + 1)]
        if args.repeat > 1:
            rows.append(("median", *(statistics.median(col) for col in list(zip(*rows, strict=True))[1:])))
        for row in rows:
            print(f"{p:>16} | {row[0]:>6} | {row[1]:>16.1f} | {row[2]:>11.1f} | {row[3]:>7.2f} | {row[4]:>11.1f} | "
                  f"{row[5]:>9.2f} | {row[6]:>15.1f} | {row[7]:>13.2f}")
    print("(a) runs the bare task on the workers' Redis transport (ecoalign.queue.broker); "
          "'(a) stock kombu' on kombu's own;")
    print("a median row takes each column's median over the runs (ratios too, run by run, not from median rates)")
    print()
    print("CPU milliseconds per bare task (a) or generated node (b), (c), by process (psutil, user + system):")
    cpu_header = f"{'run':>20} | " + " | ".join(f"{k:>8}" for k in COMPONENTS)
    print(cpu_header)
    print("-" * len(cpu_header))
    for (p, run), r in results.items():
        label = f"{p} proc" if args.repeat == 1 else f"{p} proc #{run}"
        for name, cpu in (("a", r["a"].cpu_ms), ("a stock", r["a_stock"].cpu_ms), ("b", r["b"].cpu_ms),
                          ("c", r["c"].cpu_ms)):
            print(f"{f'{label} ({name})':>20} | " + " | ".join(f"{cpu[k]:>8.2f}" for k in COMPONENTS))
    print()
    print(f"per-node orchestration overhead (idle pipeline, planned → verdict minus the model call, "
          f"{len(idle)} nodes): p50 {pct(idle, 50):.1f} ms, p95 {pct(idle, 95):.1f} ms")
    for (p, run), r in results.items():
        c = r["c"]
        print(f"under load (c), {p} process(es), run {run}, queueing included: p50 {pct(c.overhead_ms, 50):.1f} ms, "
              f"p95 {pct(c.overhead_ms, 95):.1f} ms")
    print()
    print("targets: (b)/(a) >= 0.5, (c)/bound >= 0.90")
    print(f"logs: {logdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
