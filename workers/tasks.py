"""Celery tasks: thin shells over ``ecoalign.runtime.steps``. One node per task; fan-in counted in Postgres.

Flow of a job: ``advance_job`` (controller, control queue) → ``scan_root`` (score queue) for the root, or
``generate_node`` (model queue) → ``score_node`` (score queue) for every other node → the controller again:
by default inside the transaction that finished the node (``settings.advance_inline``), else as an
``advance_job`` message. The engine looks at the whole graph on every controller run, so "all children done"
needs no chord: the run after the last child finished sees it.

Idempotency, task by task (delivery is at-least-once):

* ``advance_job``: the engine plans deterministic node ids, inserts are ON CONFLICT DO NOTHING and reservations
  are keyed ``(job, node, "generate")``, so a second run plans nothing twice and reserves nothing twice. It
  enqueues only pending nodes without a live dispatch mark (``ecoalign.store.recovery``).
* ``generate_node``: the claim is a conditional UPDATE (pending, or running past its lease) that bumps
  ``attempts``; a duplicate message loses the claim and does nothing. **Decision:** if the node already has a
  recorded generation (an earlier attempt stored the text and then died before scoring), the model is *not*
  called again: the stored text and usage are scored. A call that was in flight when its worker died is lost and
  made again by the next attempt; only the call whose result was recorded is charged.
* ``score_node``: does nothing unless the node is still running under the same attempt; score, settle and
  verdict commit in one transaction, and the ledger key can be settled once.
* ``reap``: conditional updates under the job lock; two reapers at once do the work once.

Failures: model errors (after the provider's own retries) and evaluator errors fail the node with the reason and
refund it, and the job goes on. Anything else (a bug, the database away) leaves the node to its lease; the reaper
retries it, and after ``max_node_attempts`` fails it as poison. An exception from the engine step itself fails
the job with that reason (it is deterministic: retrying would only raise it again).
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
from ecoalign.queue.names import ADVANCE_TASK, GENERATE_TASK, REAP_TASK, SCAN_TASK, SCORE_TASK
from ecoalign.runtime import steps
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


def _mark(session: Session, job_id: str, decision: steps.Advance) -> steps.Advance:
    """Keep only the nodes that have no live dispatch mark, and mark them (same transaction as the decision)."""
    if not decision.run:
        return decision
    marked = recovery.mark_dispatched(session, job_id, decision.run, process.settings().dispatch_grace_s)
    return dataclasses.replace(decision, run=tuple(marked))


def _enqueue_decision(job_id: str, decision: steps.Advance) -> None:
    root_id = make_node_id(job_id, NodeKind.ROOT, ())
    enqueue_nodes(recovery.NodeRef(job_id, n, n == root_id) for n in decision.run)


class ControllerError(RuntimeError):
    """The engine step raised (a bug, not a transient fault: the step is a pure function of graph and ledger)."""


def run_controller(job_id: str) -> steps.Advance:
    """One controller run: the engine under the job lock, then a message for each node it newly wants run.

    If the engine step itself raises, running it again on the same graph raises again: the job is failed with
    the error as its reason (reservations released) instead of being retried forever by the reaper.
    """
    try:
        decision = steps.advance(process.db(), job_id, dispatch=lambda s, d: _mark(s, job_id, d))
    except repository.NotFound:
        log.warning("advance_job: no job %s (deleted?)", job_id)
        return steps.Advance(finished=True, status="missing")
    except DBAPIError:
        raise
    except Exception as exc:
        log.exception("controller of job %s failed", job_id)
        steps.fail_job(process.db(), job_id, f"controller error: {type(exc).__name__}: {exc}"[:2000])
        return steps.Advance(finished=True, status="failed")
    _enqueue_decision(job_id, decision)
    return decision


class InlineController:
    """The controller run inside the transaction that finishes a node (``settings.advance_inline``).

    Finishing a node and planning what comes next then cost one commit and no extra broker hop; the messages
    for the new nodes are published after that commit. If the node was not finished by this task (a lost
    race), the hook does not run and there is nothing to publish: the finisher ran the controller.
    """

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.decision: steps.Advance | None = None

    def __call__(self, session: Session) -> None:
        try:
            # The new nodes are inserted with their dispatch mark: this task publishes them after the commit.
            self.decision = steps.advance_in(session, self.job_id, dispatch_s=process.settings().dispatch_grace_s)
        except DBAPIError:
            raise
        except Exception as exc:  # keep the node's own work apart from a controller bug: see _store_result
            raise ControllerError(f"{type(exc).__name__}: {exc}") from exc


def _controller_hook(job_id: str) -> InlineController | None:
    return InlineController(job_id) if process.settings().advance_inline else None


def _after_node(job_id: str, hook: InlineController | None = None) -> None:
    """A node finished: publish what the inline controller decided, or ask the controller queue to run."""
    if hook is None:
        advance_job.apply_async((job_id,))
    elif hook.decision is not None:
        _enqueue_decision(job_id, hook.decision)


def _finish_node_work(job_id: str, work: Callable[[InlineController | None], T]) -> T:
    """Run work that finishes a node, with the inline controller in its transaction when enabled.

    If the controller step raises, that transaction rolled back as a whole; the node's work is done again without
    it (it is idempotent) and ``advance_job`` takes over, which fails the job with the error.
    """
    hook = _controller_hook(job_id)
    try:
        result = work(hook)
    except ControllerError:
        log.exception("inline controller of job %s failed; finishing the node without it", job_id)
        hook = None
        result = work(None)
    _after_node(job_id, hook)
    return result


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
    except (DBAPIError, ControllerError):
        raise
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        try:
            if attempt >= process.settings().max_node_attempts:
                row = run_in_transaction(process.db(), lambda s: repository.get_node(s, node_id))
                spent = (row.tokens_prompt + row.tokens_completion) if row is not None else 0  # a recorded call
                steps.fail_node(
                    process.db(), job_id, node_id, attempt, f"gave up after {attempt} attempts: {reason}", spent=spent
                )
                _after_node(job_id)
            else:
                run_in_transaction(
                    process.db(), lambda s: repository.renew_lease(s, job_id, node_id, attempt, lease_seconds=0)
                )
        except Exception:
            log.exception("could not hand back node %s of job %s", node_id, job_id)
        raise


def _claim(job_id: str, node_id: str) -> steps.Claim | None:
    s = process.settings()
    return steps.claim(process.db(), job_id, node_id, lease_s=s.node_lease_s, max_attempts=s.max_node_attempts)


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
    if claimed is None:
        return "not claimed"
    _finish_node_work(job_id, lambda hook: _guarded(
        job_id, node_id, claimed.attempt, lambda: steps.scan_root(process.db(), process.services(), claimed, then=hook)
    ))
    return "scanned"


def _store_result(result: steps.NodeResult) -> bool:
    """Commit a node's result with the inline controller in its transaction (see ``_finish_node_work``)."""
    return _finish_node_work(result.job_id, lambda hook: steps.store_node(process.db(), result, then=hook))


@app.task(name=GENERATE_TASK)
def generate_node(job_id: str, node_id: str) -> str:
    """Claim the node (lease, attempt + 1) and call the model unless a generation is recorded; then score it here
    (``settings.score_inline``, one task and one commit per node) or on the score queue (``score_node``)."""
    claimed = _claim(job_id, node_id)
    if claimed is None:
        return "not claimed"
    node = claimed.graph[node_id]
    if node.kind is NodeKind.ROOT:  # misrouted (cannot happen through enqueue_nodes): do the scan here
        _finish_node_work(job_id, lambda hook: _guarded(
            job_id, node_id, claimed.attempt,
            lambda: steps.scan_root(process.db(), process.services(), claimed, then=hook),
        ))
        return "scanned"
    if process.settings().score_inline:
        result = _guarded(
            job_id, node_id, claimed.attempt,
            lambda: steps.work_node(process.db(), process.services(), claimed, node_id),
        )
        if result is None:  # the model failed: the node failed and was refunded
            _after_node(job_id)  # a rare path: the controller queue takes it
            return "failed"
        _guarded(job_id, node_id, claimed.attempt, lambda: _store_result(result))
        return "done"
    if not node.model:  # no generation recorded yet
        generation = _guarded(
            job_id, node_id, claimed.attempt,
            lambda: steps.generate_node(process.db(), process.services(), claimed, node_id),
        )
        if generation is None:  # the model failed (node failed and refunded) or the node was taken from us
            _after_node(job_id)  # a rare path: the controller queue takes it
            return "failed"
    score_node.apply_async((job_id, node_id, claimed.attempt))
    return "generated"


@app.task(name=SCORE_TASK)
def score_node(job_id: str, node_id: str, attempt: int) -> str:
    """Score, settle and give the engine's verdict for a node generated by another task, then the controller."""
    scored = _guarded(
        job_id,
        node_id,
        attempt,
        lambda: _finish_node_work(
            job_id,
            lambda hook: steps.score_node(process.db(), process.services(), job_id, node_id, attempt, then=hook),
        ),
    )
    return "scored" if scored else "stale"


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
                ses, j, grace_s=s.dispatch_grace_s, max_attempts=s.max_node_attempts
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
