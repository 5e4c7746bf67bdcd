"""Cancel and expiry: what ``POST /v1/batches/{id}/cancel`` and the batch reaper share.

Lines not yet started are dropped; those already running finish and are kept (``cancelling`` -> ``cancelled``,
or ``expired`` for a batch past its completion window).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ecoalign.batches.catalog import owned_batch
from ecoalign.batches.errors import BatchFinished
from ecoalign.store import batches as store
from ecoalign.store.base import utcnow
from ecoalign.store.batch_models import Batch, BatchStatus

ACTIVE = (BatchStatus.VALIDATING.value, BatchStatus.IN_PROGRESS.value)
FINISHED = (BatchStatus.COMPLETED.value, BatchStatus.FAILED.value, BatchStatus.EXPIRED.value,
            BatchStatus.FINALIZING.value)


def request_cancel(session: Session, batch_id: str, *, expired: bool = False) -> tuple[str, bool]:
    """Move an active batch to ``cancelling`` and cancel its lines not yet started, under the batch's lock.

    Returns ``(status after, finalize now)``: finalize now when no line is still running (else the last running
    line finalizes). ``expired`` marks a batch past its completion window (it ends ``expired``).
    """
    status = store.lock_status(session, batch_id)
    if status is None or status not in ACTIVE:
        return status or "", False
    now = utcnow()
    values: dict[str, Any] = {"status": BatchStatus.CANCELLING.value, "cancelling_at": now, "updated_at": now}
    if expired:
        values["expired_at"] = now
    store.set_batch(session, batch_id, **values)
    store.cancel_pending_items(session, batch_id, now)
    return BatchStatus.CANCELLING.value, store.count_running_items(session, batch_id) == 0


def cancel_batch(session: Session, batch_id: str, tenant_id: str) -> tuple[Batch, bool]:
    """A tenant cancels its batch (idempotent while it is cancelling or cancelled): the batch after the change,
    and whether to finalize it now. ``BatchFinished`` if it already finished."""
    batch = owned_batch(session, batch_id, tenant_id)
    if batch.status in FINISHED:
        raise BatchFinished(batch_id, batch.status)
    _, finalize = request_cancel(session, batch_id)
    return owned_batch(session, batch_id, tenant_id), finalize
