"""One line end to end: claim, compute (a moderation or a chat line), record; the last line finalizes the batch.

A line delivered more than ``ECOALIGN_BATCH_MAX_ATTEMPTS`` times fails as poison; an unexpected error is raised
for a retry until the last attempt, which records it as the line's error.
"""

from __future__ import annotations

from ecoalign.batches.chat_line import CHAT, chat_line
from ecoalign.batches.claim import Claimed, claim_line
from ecoalign.batches.files import line_bytes
from ecoalign.batches.finish import finish_line
from ecoalign.batches.moderation_line import moderation_line
from ecoalign.batches.outcome import LineOutcome, line_error
from ecoalign.batches.output import finalize_batch
from ecoalign.batches.runtime import BatchRuntime
from ecoalign.store.db import run_in_transaction

DEFAULT_CHAT_WAIT_S = 60.0


def load_line(rt: BatchRuntime, file_id: str, offset: int, length: int) -> bytes:
    """Just this line's bytes, in a transaction of its own."""
    return run_in_transaction(rt.factory, lambda s: line_bytes(s, file_id, offset, length))


def run_line(rt: BatchRuntime, batch_id: str, item_id: int, offset: int, length: int, *,
             chat_wait_s: float = DEFAULT_CHAT_WAIT_S) -> str:
    """``"completed"``, ``"failed"``, or ``"not claimed"`` (finished, cancelled, or the batch is not running)."""
    claimed = claim_line(rt, batch_id, item_id)
    if claimed is None:
        return "not claimed"
    if claimed.attempt > rt.settings.batch_max_attempts:
        outcome = line_error(claimed, "poison", f"gave up after {claimed.attempt - 1} deliveries "
                                                "(worker lost, timed out or crashed each time)")
    else:
        outcome = _compute(rt, claimed, offset, length, chat_wait_s)
    if finish_line(rt, claimed, outcome):
        finalize_batch(rt, batch_id)
    return "failed" if outcome.error else "completed"


def _compute(rt: BatchRuntime, claimed: Claimed, offset: int, length: int, chat_wait_s: float) -> LineOutcome:
    try:
        raw = load_line(rt, claimed.input_file_id, offset, length)
        if claimed.endpoint == CHAT:
            return chat_line(rt, claimed, raw, wait_s=chat_wait_s)
        return moderation_line(rt, claimed, raw)
    except Exception as exc:
        if claimed.attempt < rt.settings.batch_max_attempts:
            raise  # the reaper (or a redelivery) retries it
        return line_error(claimed, "internal_error", f"{type(exc).__name__}: {exc}")
