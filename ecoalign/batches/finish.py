"""Finishing a line: record its result or error only if this attempt still holds it, move the batch's counts in
the same transaction, and say whether it was the batch's last line (the one that sees none left finalizes)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ecoalign.batches.claim import Claimed
from ecoalign.batches.outcome import LineOutcome
from ecoalign.batches.runtime import BatchRuntime
from ecoalign.store import batches as store
from ecoalign.store.base import utcnow
from ecoalign.store.db import run_in_transaction
from ecoalign.store.moderation_traces import store_traces


def finish_line(rt: BatchRuntime, claimed: Claimed, outcome: LineOutcome) -> bool:
    """Record the line's result or error if this attempt still holds it; True if it was the batch's last line."""
    completed = outcome.error is None

    def run(session: Session) -> bool:
        now = utcnow()
        recorded = store.finish_item(session, claimed.item_id, claimed.attempt, {
            "status": store.COMPLETED if completed else store.FAILED, "result": outcome.result,
            "error": outcome.error, "tokens": outcome.tokens, "finished_at": now,
        })
        if not recorded:
            return False  # a later attempt holds the line, or it was finished meanwhile
        if completed:
            store_traces(session, outcome.traces)
        store.count_finished_line(session, claimed.batch_id, completed=completed, tokens=outcome.tokens, now=now)
        return store.no_line_left(session, claimed.batch_id)

    return run_in_transaction(rt.factory, run)
