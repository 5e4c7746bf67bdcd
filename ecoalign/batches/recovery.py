"""The batch reaper (beat): restart, re-send, finalize or expire stuck batches. Safe to run anywhere, any number
of times at once (every change it makes is conditional, under the batch's lock).

* a batch stuck in ``validating`` (its start message was lost) gets its start again;
* a batch with no progress for ``stall_s`` (longer than the task time limit, so nothing is still running) gets its
  unfinished lines again;
* a batch whose lines are all done is finalized;
* a batch past its completion window is expired (as a cancel: running lines finish and are kept).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from ecoalign.batches.cancel import request_cancel
from ecoalign.batches.files import LineRef, pending_refs
from ecoalign.batches.output import finalize_batch
from ecoalign.batches.runtime import BatchRuntime
from ecoalign.batches.sending import send_lines, send_start
from ecoalign.store import batches as store
from ecoalign.store.base import utcnow
from ecoalign.store.db import run_in_transaction

log = logging.getLogger(__name__)


@dataclass
class Reaped:
    """What stuck batches need; ``recover`` sends the messages and finalizes."""

    restarted: list[str] = field(default_factory=list)
    resent: dict[str, list[LineRef]] = field(default_factory=dict)
    endpoints: dict[str, str] = field(default_factory=dict)
    finalize: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)


def reap(rt: BatchRuntime, *, grace_s: float, stall_s: float, limit: int = 100) -> Reaped:
    """Decide what stuck batches need (see the module docstring); nothing is sent here."""
    out = Reaped()
    now = utcnow()

    def run(session: Session) -> None:
        out.restarted = store.validating_since(session, now - timedelta(seconds=grace_s), limit)
        _expire(session, now, limit, out)
        _idle(session, rt, now, grace_s, stall_s, limit, out)

    run_in_transaction(rt.factory, run)
    return out


def _expire(session: Session, now: datetime, limit: int, out: Reaped) -> None:
    for batch_id in store.past_their_window(session, now, limit):
        _, finalize = request_cancel(session, batch_id, expired=True)
        out.expired.append(batch_id)
        if finalize:
            out.finalize.append(batch_id)


def _idle(session: Session, rt: BatchRuntime, now: datetime, grace_s: float, stall_s: float, limit: int,
          out: Reaped) -> None:
    """Idle batches: finalize those with no line left, re-send the lines of those stalled for ``stall_s``."""
    max_line_bytes = rt.options().max_line_bytes
    for b in store.idle_since(session, now - timedelta(seconds=grace_s), limit):
        refs = pending_refs(session, b.id, b.input_file_id, max_line_bytes)
        if not refs:
            out.finalize.append(b.id)
        elif b.updated_at < now - timedelta(seconds=stall_s):
            out.resent[b.id] = refs
            out.endpoints[b.id] = b.endpoint
            store.set_batch(session, b.id, updated_at=now)


def stall_seconds(rt: BatchRuntime) -> float:
    """How long without progress means stalled: never shorter than the task time limit (plus a margin)."""
    s = rt.settings
    return max(s.batch_stall_s, float(s.task_time_limit_s) + 5)


def recover(rt: BatchRuntime) -> dict[str, int]:
    """The reaper's run: decide, send the starts and the lines, finalize; counts of each."""
    found = reap(rt, grace_s=rt.settings.dispatch_grace_s, stall_s=stall_seconds(rt))
    for batch_id in found.restarted:
        send_start(rt, batch_id)
    for batch_id, refs in found.resent.items():
        send_lines(rt, batch_id, found.endpoints[batch_id], refs)
    for batch_id in found.finalize:
        finalize_batch(rt, batch_id)
    counts = {"restarted": len(found.restarted),
                              "resent": sum(len(r) for r in found.resent.values()),
                              "finalized": len(found.finalize), "expired": len(found.expired)}
    if any(counts.values()):
        log.info("batch reaper: %s", counts)
    return counts
