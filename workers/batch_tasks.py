"""Batch API tasks (``/v1/batches``): thin Celery shells over ``ecoalign.batches``, as ``workers.tasks`` is for jobs.

Queues (routes in ``ecoalign.queue.app``): start, finalize and the reaper on the control queue, moderation lines on
the score queue, chat lines on the model queue, so existing worker pools serve batches without a new queue. Why the
work is safe under at-least-once delivery is told in ``ecoalign.batches``; here: decorate, call the service with
a ``BatchRuntime`` over this process's root (``workers.process``), and the retry policy of a line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ecoalign.batches.output import finalize_batch
from ecoalign.batches.recovery import recover
from ecoalign.batches.run import run_line
from ecoalign.batches.runtime import BatchRuntime
from ecoalign.batches.start import begin_batch
from ecoalign.queue.app import app
from ecoalign.queue.dispatch import enqueue
from ecoalign.queue.names import (
    BATCH_CHAT_LINE_TASK,
    BATCH_FINALIZE_TASK,
    BATCH_MODERATION_LINE_TASK,
    BATCH_REAP_TASK,
    BATCH_START_TASK,
)
from workers import process

log = logging.getLogger(__name__)


def runtime() -> BatchRuntime:
    """The batch runtime over this worker process's root (its database, settings, moderation engine and adapters),
    sending through the broker. Cheap: it only holds the root's members, which the root built once."""
    root = process.root()
    return BatchRuntime(root.sessions(), root.settings, root.moderation(), root.services, root.remote_fetch(),
                        send=enqueue)


@app.task(name=BATCH_START_TASK)
def batch_start(batch_id: str) -> str:
    """Validate the input file, insert one row per line, send one message per usable line."""
    return f"{begin_batch(runtime(), batch_id)} lines sent"


def _retrying(task: Any, run: Callable[[], str]) -> str:
    """Run a line; on an unexpected error publish the same message again after a backoff (the claim counts the
    attempts, and the line fails as poison after ``ECOALIGN_BATCH_MAX_ATTEMPTS``)."""
    try:
        return run()
    except Exception as exc:
        retries = int(getattr(task.request, "retries", 0) or 0)
        log.warning("batch line task failed (%s: %s); retrying", type(exc).__name__, exc)
        raise task.retry(exc=exc, countdown=min(2.0 ** retries, 30.0), max_retries=None) from exc


@app.task(name=BATCH_MODERATION_LINE_TASK, bind=True)
def batch_moderation_line(self: Any, batch_id: str, item_id: int, offset: int, length: int) -> str:
    """One ``/v1/moderations`` line."""
    return _retrying(self, lambda: run_line(runtime(), batch_id, item_id, offset, length))


@app.task(name=BATCH_CHAT_LINE_TASK, bind=True)
def batch_chat_line(self: Any, batch_id: str, item_id: int, offset: int, length: int) -> str:
    """One ``/v1/chat/completions`` line (an in-process EcoAlign job), bounded by the task's soft time limit."""
    rt = runtime()
    wait_s = max(1.0, rt.settings.task_soft_time_limit_s - 5.0)
    return _retrying(self, lambda: run_line(rt, batch_id, item_id, offset, length, chat_wait_s=wait_s))


@app.task(name=BATCH_FINALIZE_TASK)
def batch_finalize(batch_id: str) -> str:
    return finalize_batch(runtime(), batch_id) or "not ready"


@app.task(name=BATCH_REAP_TASK)
def batch_reap() -> dict[str, int]:
    """Periodic (beat): restart, re-send, finalize or expire stuck batches. Safe to run anywhere, any number."""
    return recover(runtime())
