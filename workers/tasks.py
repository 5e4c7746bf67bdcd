"""Celery tasks: thin shells over ``ecoalign.runtime`` (controller, node work, commit). One node per task.

Flow of a job: ``advance_job`` (controller, control queue) → ``scan_root`` (score queue) for the root, or
``generate_node`` (model queue: claim, model call, scoring, verdict) for every other node; the task that
finishes a node runs the controller in the same transaction (``runtime.commit``) and publishes the nodes it
planned after the commit. The engine looks at the whole graph on every controller run, so "all children done"
needs no chord: the run after the last child finished sees it.

Idempotency, task by task (delivery is at-least-once):

* ``advance_job``: the engine plans deterministic node ids, inserts are ON CONFLICT DO NOTHING and reservations
  are keyed ``(job, node, "generate")``, so a second run plans nothing twice and reserves nothing twice. It
  enqueues only pending nodes without a live dispatch mark (``ecoalign.store.recovery``).
* ``generate_node`` / ``scan_root``: the claim is a conditional UPDATE (pending, or running past its lease) that
  bumps ``attempts``; a duplicate message loses the claim and does nothing. The node is finished only under the
  attempt that did the work, and its ledger key can be settled once. **Decision:** if the node already has a
  recorded generation (an evaluator bug after the call recorded it, then handed the node back), the model is
  *not* called again: the stored text and usage are scored. A call that was in flight when its worker died is
  lost and made again by the next attempt; only the call whose result was recorded is charged.
* ``reap``: conditional updates under the job lock; two reapers at once do the work once.

Failures: model errors (after the provider's own retries) and evaluator errors fail the node with the reason and
refund it, and the job goes on. Anything else: a database error leaves the node to its lease (the reaper
retries it); any other exception counts as one of the node's failures (``nodes.failures``) and hands it back, and
after ``max_node_attempts`` failures the node fails as poison. Deliveries lost to crashes (the worker died, the
lease ran out) are not failures: they have their own, higher bound, ``max_node_crashes``. An exception from the
engine step itself fails the job with that reason (it is deterministic: retrying would only raise it again).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from celery.signals import after_setup_logger, worker_process_shutdown, worker_shutdown
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ecoalign.engine.graph import NodeKind
from ecoalign.engine.graph import node_id as make_node_id
from ecoalign.queue.app import app
from ecoalign.queue.names import ADVANCE_TASK, GENERATE_TASK, REAP_TASK, SCAN_TASK
from ecoalign.runtime import controller, nodework, tracing
from ecoalign.runtime.commit import Committed, ControllerError, commit
from ecoalign.store import recovery, repository
from ecoalign.store.db import run_in_transaction
from workers import process

log = logging.getLogger(__name__)
T = TypeVar("T")


# -- publishing -----------------------------------------------------------------------------------------------
def enqueue_nodes(refs: Iterable[recovery.NodeRef]) -> None:
    """One message per node: the scan for a root, generation for any other node (routes pick the queue)."""
    for ref in refs:
        if ref.is_root:
            scan_root.apply_async((ref.job_id, ref.node_id))
        else:
            generate_node.apply_async((ref.job_id, ref.node_id))


def _enqueue_decision(job_id: str, decision: controller.Advance) -> None:
    if decision.ended:  # this run ended the job: its trace is complete
        tracing.export_job(process.db(), process.root().job_spans(), job_id)
    root_id = make_node_id(job_id, NodeKind.ROOT, ())
    enqueue_nodes(recovery.NodeRef(job_id, n, n == root_id) for n in decision.run)


def _plan_and_mark(session: Session, job_id: str) -> controller.Advance:
    """The controller's decision, narrowed to the nodes that have no live dispatch mark, which it marks (one
    transaction), so the many controller runs of a busy job do not enqueue the same pending node again."""
    decision = controller.advance_in(session, job_id)
    if not decision.run:
        return decision
    marked = recovery.mark_dispatched(session, job_id, decision.run, process.settings().dispatch_grace_s)
    return dataclasses.replace(decision, run=tuple(marked))


def run_controller(job_id: str) -> controller.Advance:
    """One controller run: the engine under the job lock, then a message for each node it newly wants run.

    If the engine step itself raises, running it again on the same graph raises again: the job is failed with
    the error as its reason (reservations released) instead of being retried forever by the reaper.
    """
    try:
        decision = run_in_transaction(process.db(), lambda s: _plan_and_mark(s, job_id))
    except repository.NotFound:
        log.warning("advance_job: no job %s (deleted?)", job_id)
        return controller.Advance(finished=True, status="missing")
    except DBAPIError:
        raise
    except Exception as exc:
        log.exception("controller of job %s failed", job_id)
        controller.fail_job(process.db(), job_id, f"controller error: {type(exc).__name__}: {exc}"[:2000])
        return controller.Advance(finished=True, status="failed")
    _enqueue_decision(job_id, decision)
    return decision


def _commit(outcome: nodework.NodeOutcome) -> Committed | None:
    """Commit a node's outcome with the controller's next step; None when the controller could not run in it.

    If the controller step raises, that transaction rolled back as a whole; the outcome is committed again
    without it, and ``advance_job`` takes over (it fails the job with the error).
    """
    try:
        return commit(process.db(), outcome, plan_for_s=process.settings().dispatch_grace_s)
    except ControllerError:
        log.exception("inline controller of job %s failed; finishing the node without it", outcome.job_id)
        commit(process.db(), outcome)
        return None


def _after_node(job_id: str, committed: Committed | None = None) -> None:
    """A node finished: publish what the controller planned in its commit, or ask the controller queue to run."""
    if committed is None:
        advance_job.apply_async((job_id,))
    elif committed.plan is not None:
        _enqueue_decision(job_id, committed.plan)


# -- failure handling -----------------------------------------------------------------------------------------
def _guarded(job_id: str, node_id: str, attempt: int, work: Callable[[], T]) -> T:
    """Run a node's work while holding its lease; on an unexpected error, give the node back or fail it.

    A database error leaves the node to its lease (the reaper retries). Any other exception is a bug or a broken
    evaluator: on the last allowed attempt the node fails with the error as its reason (the job goes on); before
    that its lease is ended at once so the reaper retries it on its next pass.
    """
    try:
        with process.keeper().hold(job_id, node_id, attempt):
            return work()
    except DBAPIError:
        raise
    except Exception as exc:
        try:
            _hand_back(job_id, node_id, attempt, f"{type(exc).__name__}: {exc}")
        except Exception:
            log.exception("could not hand back node %s of job %s", node_id, job_id)
        raise


def _hand_back(job_id: str, node_id: str, attempt: int, reason: str) -> None:
    """Count the failure (a crash is not one: it never gets here) and give the node back, or fail it once
    ``max_node_attempts`` failures are used up; one transaction, so no other claim slips in between."""
    max_failures = process.settings().max_node_attempts

    def _count(session: Session) -> bool:
        failures = repository.hand_back(session, job_id, node_id, attempt)
        if failures is None or failures < max_failures:
            return False
        row = repository.get_node(session, node_id)
        spent = (row.tokens_prompt + row.tokens_completion) if row is not None else 0  # a recorded call
        nodework.write_outcome(session, nodework.NodeFailure(
            job_id, node_id, attempt, f"gave up after {failures} failures: {reason}"[:2000], spent
        ))
        return True

    if run_in_transaction(process.db(), _count):
        _after_node(job_id)


def _claim(job_id: str, node_id: str) -> nodework.Claim | None:
    s = process.settings()
    return nodework.claim(process.db(), job_id, node_id, lease_s=s.node_lease_s, max_attempts=s.max_node_attempts,
                          max_crashes=s.max_node_crashes)


def _scan(claimed: nodework.Claim) -> str:
    job_id, node_id = claimed.spec.job_id, claimed.graph.root.id
    committed = _guarded(
        job_id, node_id, claimed.attempt, lambda: _commit(nodework.scan_root(process.services(), claimed))
    )
    _after_node(job_id, committed)
    return "scanned"


# -- tasks ------------------------------------------------------------------------------------------------------
@app.task(name=ADVANCE_TASK)
def advance_job(job_id: str) -> str:
    """The controller: run the engine for the job under its row lock and enqueue the nodes it wants run."""
    decision = run_controller(job_id)
    return decision.status or f"dispatched {len(decision.run)}"


@app.task(name=SCAN_TASK)
def scan_root(job_id: str, node_id: str) -> str:
    """The global scan of the request (root node), then the controller."""
    claimed = _claim(job_id, node_id)
    return "not claimed" if claimed is None else _scan(claimed)


@app.task(name=GENERATE_TASK)
def generate_node(job_id: str, node_id: str) -> str:
    """Claim the node (lease, attempt + 1), call the model unless a generation is recorded, score it, and commit
    text, scores, verdict, charge and the controller's next step in one transaction: one task per node."""
    claimed = _claim(job_id, node_id)
    if claimed is None:
        return "not claimed"
    if claimed.graph[node_id].kind is NodeKind.ROOT:  # misrouted (cannot happen through enqueue_nodes)
        return _scan(claimed)
    outcome = _guarded(
        job_id, node_id, claimed.attempt,
        lambda: nodework.work_node(process.db(), process.services(), claimed, node_id),
    )
    committed = _guarded(job_id, node_id, claimed.attempt, lambda: _commit(outcome))
    _after_node(job_id, committed)
    return "failed" if isinstance(outcome, nodework.NodeFailure) else "done"


@app.task(name=REAP_TASK)
def reap() -> dict[str, Any]:
    """Periodic (beat): redo what dead workers or a lost broker left behind. Safe to run anywhere, any number."""
    s = process.settings()
    factory = process.db()
    requeued = poisoned = 0
    for job_id in run_in_transaction(factory, lambda ses: recovery.expired_jobs(ses, grace_s=s.dispatch_grace_s)):
        sweep = run_in_transaction(
            factory,
            lambda ses, j=job_id: recovery.sweep_job(
                ses, j, grace_s=s.dispatch_grace_s, max_attempts=s.max_node_attempts,
                max_crashes=s.max_node_crashes,
            ),
        )
        enqueue_nodes(sweep.enqueue)
        requeued += len(sweep.enqueue)
        if sweep.poisoned:
            poisoned += len(sweep.poisoned)
            log.warning("job %s: nodes %s failed as poison", job_id, sweep.poisoned)
            advance_job.apply_async((job_id,))
    stalled = run_in_transaction(factory, lambda ses: recovery.stalled_jobs(ses, stall_s=s.stall_s))
    for job_id in stalled:
        advance_job.apply_async((job_id,))
    if requeued or poisoned or stalled:
        log.info("reaper: %d nodes re-enqueued, %d poisoned, %d stalled jobs advanced",
                 requeued, poisoned, len(stalled))
    return {"requeued": requeued, "poisoned": poisoned, "stalled": len(stalled)}


@worker_process_shutdown.connect
@worker_shutdown.connect
def _close_process_resources(**_: Any) -> None:
    process.shutdown()


@after_setup_logger.connect
def _quiet_http_logs(**_: Any) -> None:
    """httpx logs every request at INFO: one line per model call drowns the worker's own log."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
