"""A finished job's trace to OpenTelemetry (``ecoalign.telemetry``), from whichever process ended the job.

Called by the drivers when the controller reports that its call ended the job (``Advance.ended``): the in-process
driver (``inprocess.run_job``) and the Celery workers. Telemetry must never fail a job: any error is logged.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from ecoalign.runtime.report import full_report
from ecoalign.store.db import run_in_transaction

if TYPE_CHECKING:
    from ecoalign.telemetry import JobSpans

log = logging.getLogger(__name__)


def export_job(factory: sessionmaker[Session], spans: JobSpans | None, job_id: str) -> bool:
    """Export the job's spans if export is on; True if they were handed to the span processor."""
    if spans is None:
        return False
    try:
        report = run_in_transaction(factory, lambda s: full_report(s, job_id))
        spans.export(report)
    except Exception:  # a collector or a report problem must not touch the job
        log.exception("spans of job %s not exported", job_id)
        return False
    return True
