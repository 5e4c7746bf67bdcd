"""The outbox writes of ``ecoalign.batches`` and ``ecoalign.reviews``: a batch's final status, and a new review
task, become an event in the same transaction. (A job's terminal status is recorded by
``ecoalign.store.repository.finish_job`` itself, the one place every job ends.)"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ecoalign.store import batches, webhooks
from ecoalign.webhooks.events import batch_event


def batch_finished(session: Session, batch_id: str) -> str | None:
    """Record the event of the batch's status (just set in this transaction); the event id, or None if no endpoint
    of its tenant wants it."""
    row = batches.read_batch(session, batch_id, "tenant_id", "status", "endpoint", "requests_total",
                             "requests_completed", "requests_failed", "output_file_id", "error_file_id")
    if row is None:
        return None
    event = batch_event(row.status)
    data = {
        "id": batch_id, "object": "batch", "status": row.status, "endpoint": row.endpoint,
        "request_counts": {"total": row.requests_total, "completed": row.requests_completed,
                           "failed": row.requests_failed},
        "output_file_id": row.output_file_id, "error_file_id": row.error_file_id,
    }
    return webhooks.record_event(session, row.tenant_id, event, batch_id, data)


def review_opened(session: Session, tenant_id: str, task_id: str, data: dict[str, Any]) -> str | None:
    """Record ``review.required`` for the task just inserted in this transaction; the event id, or None if no
    endpoint of the tenant wants it."""
    return webhooks.record_event(session, tenant_id, "review.required", task_id, {"id": task_id, "object": "review",
                                                                                  **data})
