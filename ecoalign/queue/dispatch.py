"""What other processes (the API, the CLI) call to hand work to the workers: tasks are sent by name, so nothing
here imports a task module or its dependencies."""

from __future__ import annotations

import logging
from typing import Any

from kombu.exceptions import OperationalError

from ecoalign.queue.app import app
from ecoalign.queue.names import ADVANCE_TASK, BATCH_FINALIZE_TASK, BATCH_START_TASK

log = logging.getLogger(__name__)
FAST_RETRY = {"max_retries": 3, "interval_start": 0.0, "interval_step": 0.2, "interval_max": 0.5}
BATCH_TASKS = {"start": BATCH_START_TASK, "finalize": BATCH_FINALIZE_TASK}


def enqueue(task: str, *args: Any) -> bool:
    """Send ``task`` by name. False if the broker could not take the message (fails fast, about a second, rather
    than hold an HTTP request through a broker outage).

    The work is already durable in Postgres, so a False is not lost work: the reapers find what was never
    dispatched (a pending root without a dispatch mark, a stalled batch) and enqueue it once the broker is back.
    """
    try:
        app.send_task(task, args=args, retry_policy=FAST_RETRY)
    except OperationalError:
        log.warning("broker unavailable: %s%r will be picked up by the reaper", task, args, exc_info=True)
        return False
    return True


def enqueue_advance(job_id: str) -> bool:
    """Ask the controller to run for the job."""
    return enqueue(ADVANCE_TASK, job_id)


def enqueue_batch(step: str, batch_id: str) -> bool:
    """Start (``"start"``) or finalize (``"finalize"``) an OpenAI Batch on the workers."""
    return enqueue(BATCH_TASKS[step], batch_id)
