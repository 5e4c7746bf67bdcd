"""The bare ceiling of benchmarks/pipeline.py: a minimal Celery task doing one conditional UPDATE and one INSERT.

Same broker, same delivery settings (acks_late, prefetch 1, JSON, no results) and same database as the ecoalign
workers, so the ratio of ecoalign's node rate to this task rate is the cost of a node in "bare task" units.
Run as ``celery -A benchmarks.bare worker`` with ``ECOALIGN_DB_URL`` and ``ECOALIGN_BROKER_URL`` set.
"""

from __future__ import annotations

import os
import threading

from celery import Celery
from sqlalchemy import Engine, create_engine, text

from ecoalign.queue.broker import transport_for

BROKER_URL = os.environ.get("ECOALIGN_BROKER_URL", "redis://127.0.0.1:6379/0")
# The same Redis transport as the ecoalign workers (``ecoalign.queue.broker``), or kombu's own with "stock".
STOCK_TRANSPORT = os.environ.get("ECOALIGN_BENCH_BARE_TRANSPORT") == "stock"
app = Celery("ecoalign-bare")
app.conf.update(
    broker_url=BROKER_URL,
    broker_transport=None if STOCK_TRANSPORT else transport_for(BROKER_URL),
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    task_default_queue="bench.bare",
    broker_connection_retry_on_startup=True,
)

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS bench_counter (id int PRIMARY KEY, n bigint NOT NULL, cap bigint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS bench_event (id bigserial PRIMARY KEY, k int NOT NULL, at timestamptz NOT NULL)",
)

ROWS = 64
_lock = threading.Lock()
_engine: dict[int, Engine] = {}


def engine() -> Engine:
    """One engine per process (created after fork)."""
    pid = os.getpid()
    with _lock:
        if pid not in _engine:
            _engine[pid] = create_engine(os.environ["ECOALIGN_DB_URL"], pool_size=20, max_overflow=10)
        return _engine[pid]


@app.task(name="bench.touch")
def touch(k: int) -> None:
    with engine().begin() as conn:
        # one row per "job" (64 of them), as ecoalign's ledger UPDATE touches its own job's row
        conn.execute(text("UPDATE bench_counter SET n = n + 1 WHERE id = :id AND n < cap"), {"id": k % ROWS})
        conn.execute(text("INSERT INTO bench_event (k, at) VALUES (:k, clock_timestamp())"), {"k": k})
