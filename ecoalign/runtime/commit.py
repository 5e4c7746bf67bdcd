"""Committing a node's outcome, with the controller's next step in the same transaction when asked.

Why together: finishing a node and planning what comes next then cost one commit and no broker hop, and a busy
job gets no pile of controller messages. The caller acts on the returned ``Committed``: it publishes
``plan.run`` after the commit. If the controller step raises, the whole transaction rolls back and
``ControllerError`` tells the caller to commit the outcome again without it and leave the job to a controller
run of its own (which fails the job with the error: the engine step is deterministic).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.runtime import controller
from ecoalign.runtime.nodework import NodeOutcome, failure_reason, write_outcome
from ecoalign.store.db import run_in_transaction

log = logging.getLogger(__name__)


class ControllerError(RuntimeError):
    """The engine step raised (a bug, not a transient fault: the step is a pure function of graph and ledger)."""


@dataclass(frozen=True)
class Committed:
    """What a commit did: whether it finished the node, and what the controller planned in it (if it ran)."""

    finished: bool
    plan: controller.Advance | None = None


def commit(
    factory: sessionmaker[Session], outcome: NodeOutcome, *, plan_for_s: float | None = None
) -> Committed:
    """Store ``outcome``; with ``plan_for_s``, also run the controller in that transaction once the node is
    finished (its new nodes carry a dispatch mark of ``plan_for_s``: publish ``plan.run`` after the commit)."""
    reason = failure_reason(outcome)
    if reason is not None:
        log.warning("node %s of job %s failed: %s", outcome.node_id, outcome.job_id, reason)

    def _commit(session: Session) -> Committed:
        if not write_outcome(session, outcome):
            return Committed(finished=False)  # not ours any more: whoever finished it ran the controller
        if plan_for_s is None:
            return Committed(finished=True)
        return Committed(finished=True, plan=_plan(session, outcome.job_id, plan_for_s))

    return run_in_transaction(factory, _commit)


def _plan(session: Session, job_id: str, dispatch_s: float) -> controller.Advance:
    try:
        return controller.advance_in(session, job_id, dispatch_s=dispatch_s)
    except DBAPIError:
        raise
    except Exception as exc:  # keep the node's own work apart from a controller bug
        raise ControllerError(f"{type(exc).__name__}: {exc}") from exc
