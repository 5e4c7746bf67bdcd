"""What other processes (the API) call to hand a job to the workers, without importing the tasks' dependencies."""

from __future__ import annotations

import logging

from kombu.exceptions import OperationalError

from workers.app import app
from workers.names import ADVANCE_TASK

log = logging.getLogger(__name__)
FAST_RETRY = {"max_retries": 3, "interval_start": 0.0, "interval_step": 0.2, "interval_max": 0.5}


def enqueue_advance(job_id: str) -> bool:
    """Ask the controller to run for the job. False if the broker could not take the message.

    The job is already durable in Postgres, so a False is not a lost job: its root node is pending without a
    dispatch mark, and the reaper enqueues it within ``dispatch_grace_s`` once the broker is back.
    """
    try:
        # Fail fast (about a second) rather than hold an HTTP request through a broker outage.
        app.send_task(ADVANCE_TASK, args=(job_id,), retry_policy=FAST_RETRY)
    except OperationalError:
        log.warning("broker unavailable: job %s will be picked up by the reaper", job_id, exc_info=True)
        return False
    return True
