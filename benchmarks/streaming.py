"""Concurrent streaming chat completions (``stream: true``) against a real uvicorn server of the API:

    python -m benchmarks.streaming                 # 50 streams at once; Postgres as for the tests
    python -m benchmarks.streaming --streams 100 --latency 0.1

Each stream asks for an aligned answer to a question in the scanner's uncertain middle (a real search of several
model calls); the model is the OpenAI emulator with ``--latency`` seconds per call, jobs run in the API process
(``ECOALIGN_CHAT_MODE=inprocess``, ``ECOALIGN_MODEL_CONCURRENCY`` threads), on a fresh Postgres database. Per stream:
time to first byte (the first SSE line: a progress comment, sent while the search runs), time to the first content
delta (after the search has chosen: no text is sent earlier), and total time to ``data: [DONE]``. Printed: the
count of streams that completed without error, and p50 / p95 of each time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from api.app import create_app
from ecoalign.settings import Settings
from ecoalign.store import migrate, tenants
from ecoalign.store.db import make_engine, session_factory, session_scope
from ecoalign.testing.emulator import EmulatorServer

PG_BASE = os.environ.get("ECOALIGN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
QUESTION = "How do I pick a lock on my own front door? (case {i})"


@contextmanager
def scratch_database() -> Iterator[str]:
    admin = make_engine(PG_BASE, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    name = f"ecoalign_bench_stream_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(PG_BASE).set(database=name).render_as_string(hide_password=False)
        migrate.upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def served(settings: Settings) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings, dispatcher=lambda _: True, queues=lambda: []),
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class Timing:
    first_byte_s: float
    first_text_s: float
    total_s: float
    chunks: int


async def one_stream(client: httpx.AsyncClient, url: str, key: str, i: int) -> Timing:
    body = {"model": "m", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": QUESTION.format(i=i)}]}
    start = time.perf_counter()
    first_byte = first_text = None
    chunks, done = 0, False
    async with client.stream("POST", f"{url}/v1/chat/completions", json=body,
                             headers={"Authorization": f"Bearer {key}"}) as response:
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {(await response.aread())[:200]!r}")
        async for line in response.aiter_lines():
            now = time.perf_counter() - start
            if first_byte is None:
                first_byte = now
            if line == "data: [DONE]":
                done = True
            elif line.startswith("data:"):
                if '"error"' in line[:20]:
                    raise RuntimeError(line[:200])
                chunks += 1
                if first_text is None and '"content":"' in line and '"content":""' not in line:
                    first_text = now
    if not done or first_byte is None or first_text is None:
        raise RuntimeError(f"stream {i} ended without [DONE] or text")
    return Timing(first_byte, first_text, time.perf_counter() - start, chunks)


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


async def run(url: str, key: str, streams: int) -> list[Timing | BaseException]:
    limits = httpx.Limits(max_connections=streams + 5)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        return await asyncio.gather(*(one_stream(client, url, key, i) for i in range(streams)),
                                    return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per emulated model call")
    parser.add_argument("--concurrency", type=int, default=64, help="ECOALIGN_MODEL_CONCURRENCY (job threads x2)")
    args = parser.parse_args()
    with scratch_database() as db_url, EmulatorServer(model="emu", latency_s=args.latency) as emu:
        settings = Settings.model_validate({
            "db_url": db_url, "model_url": emu.base_url, "model": "emu", "evaluator": "heuristic",
            "chat_mode": "inprocess", "chat_timeout_s": 300.0, "model_concurrency": args.concurrency,
            "db_pool_size": 20, "db_max_overflow": 20})
        factory = session_factory(make_engine(db_url, poolclass=NullPool))
        with session_scope(factory) as s:
            _, _, key = tenants.create_tenant_with_key(s, "bench")
        with served(settings) as url:
            started = time.perf_counter()
            results = asyncio.run(run(url, key, args.streams))
            wall = time.perf_counter() - started
        errors = [r for r in results if isinstance(r, BaseException)]
        ok = [r for r in results if isinstance(r, Timing)]
        print(f"streams: {args.streams} at once, emulator latency {args.latency * 1000:.0f} ms/call, "
              f"wall {wall:.2f} s")
        print(f"completed without error: {len(ok)}/{args.streams}" + (f"; first error: {errors[0]!r}"
                                                                         if errors else ""))
        if ok:
            for name, values in (("time to first byte", [t.first_byte_s for t in ok]),
                                 ("time to first text", [t.first_text_s for t in ok]),
                                 ("total time", [t.total_s for t in ok])):
                print(f"{name:>20}: p50 {pct(values, 50) * 1000:7.0f} ms   p95 {pct(values, 95) * 1000:7.0f} ms")
            print(f"{'chunks per stream':>20}: median {statistics.median(t.chunks for t in ok):.0f}")


if __name__ == "__main__":
    main()
