"""What a node pays in its worker beyond a bare task, whatever ecoalign's own code costs: CPU per operation.

    python -m benchmarks.floor            # Postgres and Redis as for the tests; about half a minute

A node is a Celery task like the bare task of ``benchmarks/pipeline.py`` (a), plus at least: one model call over
HTTP (httpx, the OpenAI chat shape, against the emulator at zero latency), one message published for the next
node, and its statements and commits. This prints the CPU time of this process for each of those operations, so
the (b)/(a) ratio of the pipeline benchmark can be set against its floor: with a bare task costing its worker
``A`` ms, a node costs at least ``A + model call + publish`` before any statement or engine step of its own.
"""

from __future__ import annotations

import argparse
import os
import resource
import uuid
from collections.abc import Callable

import redis
from sqlalchemy import text

from benchmarks.pipeline import PG_BASE, REQUEST, cpu_model, emulator

BROKER = os.environ.get("ECOALIGN_BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def per_call_us(fn: Callable[[], object], n: int, warmup: int = 30) -> float:
    """CPU microseconds of this process per call of ``fn`` (waits on sockets are not CPU)."""
    for _ in range(warmup):
        fn()
    start = cpu_s()
    for _ in range(n):
        fn()
    return (cpu_s() - start) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1000, help="calls per operation")
    args = parser.parse_args(argv)
    os.environ["ECOALIGN_BROKER_URL"] = BROKER
    from ecoalign.providers.openai_http import OpenAIChatProvider
    from ecoalign.store.db import make_engine, run_in_transaction, session_factory
    from workers import tasks
    from workers.app import app

    app.conf.broker_url = BROKER
    rows: list[tuple[str, float]] = []
    with emulator(18781, 0.0) as url:
        provider = OpenAIChatProvider(base_url=url, model="ecoalign-emulator")
        messages = [{"role": "user", "content": REQUEST}]
        rows.append(("model call (httpx, OpenAI chat, zero-latency emulator)",
                     per_call_us(lambda: provider.complete(messages, max_tokens=64), args.n)))
        provider.close()
    job, node = uuid.uuid4().hex, uuid.uuid4().hex[:20]
    rows.append(("publish one node message (Celery apply_async, Redis)",
                 per_call_us(lambda: tasks.generate_node.apply_async((job, node)), args.n)))
    redis.Redis.from_url(BROKER).flushdb()
    engine = make_engine(PG_BASE, pool_size=1, pool_pre_ping=False)
    factory = session_factory(engine)
    one = text("SELECT 1")
    txn_1 = per_call_us(lambda: run_in_transaction(factory, lambda s: s.execute(one).scalar_one()), args.n)
    txn_5 = per_call_us(
        lambda: run_in_transaction(factory, lambda s: [s.execute(one).scalar_one() for _ in range(5)]), args.n // 2
    )
    engine.dispose()
    rows.append(("one statement in a transaction (SQLAlchemy session)", (txn_5 - txn_1) / 4))
    rows.append(("a transaction around it (begin, commit, session)", txn_1 - (txn_5 - txn_1) / 4))
    print(f"CPU per operation in this process ({os.cpu_count()} cores, {cpu_model()}), {args.n} calls each:")
    for name, us in rows:
        print(f"  {name:<58} {us / 1000:6.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
