"""Batch API state changes shared by the API (``POST /v1/batches/{id}/cancel``) and the workers' batch reaper."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session

from ecoalign.store.base import utcnow
from ecoalign.store.batch_models import Batch, BatchItem, BatchItemStatus, BatchStatus

BATCHES = cast(Table, Batch.__table__)
ITEMS = cast(Table, BatchItem.__table__)
ACTIVE = (BatchStatus.VALIDATING.value, BatchStatus.IN_PROGRESS.value)


def request_cancel(session: Session, batch_id: str, *, expired: bool = False) -> tuple[str, bool]:
    """Move an active batch to ``cancelling`` and cancel its lines not yet started, under the batch's lock.

    Returns ``(status after, finalize now)``: finalize now when no line is still running (else the last running
    line finalizes). ``expired`` marks a batch past its completion window (it ends ``expired``).
    """
    status = session.execute(
        select(BATCHES.c.status).where(BATCHES.c.id == batch_id).with_for_update()
    ).scalar_one_or_none()
    if status is None or status not in ACTIVE:
        return status or "", False
    now = utcnow()
    values: dict[str, Any] = {"status": BatchStatus.CANCELLING.value, "cancelling_at": now, "updated_at": now}
    if expired:
        values["expired_at"] = now
    session.execute(update(BATCHES).where(BATCHES.c.id == batch_id).values(**values))
    session.execute(
        update(ITEMS)
        .where(ITEMS.c.batch_id == batch_id, ITEMS.c.status == BatchItemStatus.PENDING.value)
        .values(status=BatchItemStatus.CANCELLED.value, finished_at=now)
    )
    running = session.execute(
        select(func.count()).where(ITEMS.c.batch_id == batch_id, ITEMS.c.status == BatchItemStatus.RUNNING.value)
    ).scalar_one()
    return BatchStatus.CANCELLING.value, running == 0
