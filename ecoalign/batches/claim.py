"""Claiming a line: ``attempts + 1`` fences the result, so of two deliveries only the last claimer records it, and
a finished line is never claimed again."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from ecoalign.batches.output import finalize_batch
from ecoalign.batches.runtime import BatchRuntime
from ecoalign.store import batches as store
from ecoalign.store.base import utcnow
from ecoalign.store.batch_models import BatchStatus
from ecoalign.store.db import run_in_transaction


@dataclass(frozen=True)
class Claimed:
    """A line this attempt holds, with what its work needs from the batch (``budget_left``: None = no cap)."""

    batch_id: str
    item_id: int
    attempt: int
    custom_id: str
    line_no: int
    endpoint: str
    tenant_id: str | None
    input_file_id: str
    budget_left: int | None


def claim_line(rt: BatchRuntime, batch_id: str, item_id: int) -> Claimed | None:
    """Take the line (attempt + 1), or None: finished, cancelled, or its batch is not running.

    In a cancelling batch an unstarted (or abandoned) line is cancelled here instead; if it was the last one, the
    batch is finalized.
    """

    def run(session: Session) -> tuple[Claimed | None, bool]:
        batch = store.read_batch(session, batch_id, "status", "endpoint", "tenant_id", "input_file_id",
                                 "token_budget", "tokens_spent")
        if batch is None:
            return None, False
        if batch.status == BatchStatus.CANCELLING.value:
            cancelled = store.cancel_item(session, batch_id, item_id, utcnow())
            return None, cancelled and store.no_line_left(session, batch_id)
        if batch.status != BatchStatus.IN_PROGRESS.value:
            return None, False
        row = store.claim_item(session, batch_id, item_id)
        if row is None:
            return None, False
        left = None if batch.token_budget is None else max(0, int(batch.token_budget) - int(batch.tokens_spent))
        return Claimed(batch_id, item_id, int(row.attempts), str(row.custom_id), int(row.line_no), batch.endpoint,
                       batch.tenant_id, batch.input_file_id, left), False

    claimed, finalize = run_in_transaction(rt.factory, run)
    if finalize:
        finalize_batch(rt, batch_id)
    return claimed
