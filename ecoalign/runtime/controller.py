"""The controller: create a job (``submit``), run the engine once and write what it decided (``advance``), fail
a job (``fail_job``).

Safe to run more than once for the same job (at-least-once delivery): node ids are deterministic, inserts are
``ON CONFLICT DO NOTHING``, state changes are conditional, and ledger keys are unique. Every run holds the job's
row lock, so two controller runs of one job never interleave.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from ecoalign.content import Request
from ecoalign.engine.graph import NodeStatus, ThoughtGraph
from ecoalign.engine.policy import Policy
from ecoalign.engine.search import LedgerView, Outcome, PlannedNode
from ecoalign.engine.strategies import get_strategy
from ecoalign.runtime.jobspec import JobSpec, cached_job_spec
from ecoalign.runtime.nodework import GENERATE
from ecoalign.runtime.requests import request_to_messages
from ecoalign.store import ledger, reads, repository
from ecoalign.store.base import utcnow
from ecoalign.store.db import run_in_transaction
from ecoalign.store.models import Decision, JobStatus

MAX_PLANNING_ROUNDS = 8  # engine steps per controller run while everything it plans settles at once
TEMPLATE_LEASE_S = 60


class IdempotencyConflict(ValueError):
    """An idempotency key reused with a different request."""


@dataclass(frozen=True)
class Advance:
    """What the controller decided: nodes to run now, or that the job is over."""

    run: tuple[str, ...] = ()
    finished: bool = False
    status: str = ""
    ended: bool = False  # this very call ended the job (its trace is complete: export it once, see runtime.tracing)


# -- submit -------------------------------------------------------------------------------------------------------
def submit(
    session: Session,
    request: Request,
    policy: Policy,
    *,
    strategy: str = "ecoalign",
    tenant_id: str | None = None,
    idempotency_key: str | None = None,
    job_id: str | None = None,
) -> tuple[str, bool]:
    """Create a queued job and its root node; ``(job_id, created)``. Validates the strategy name first.

    ``job_id`` fixes the id (an evaluation's deterministic ids: the same item and method plan the same node ids,
    so a seeded simulation is reproducible); an existing job with that id is returned with ``created=False``.
    """
    get_strategy(strategy)
    fingerprint = hashlib.sha256(
        (request.fingerprint() + repr(sorted(policy.to_dict().items())) + strategy).encode()
    ).hexdigest()
    job, created = repository.create_job(
        session,
        strategy=strategy,
        request={"messages": request_to_messages(request)},
        policy=policy.to_dict(),
        budget_total=policy.budget,
        tenant_id=tenant_id,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
        root_text=request.text,
        job_id=job_id,
    )
    if not created and job.request_fingerprint != fingerprint:
        raise IdempotencyConflict(f"idempotency key {idempotency_key!r} was already used for a different request")
    return job.id, created


# -- advance --------------------------------------------------------------------------------------------------------
def advance(factory: sessionmaker[Session], job_id: str) -> Advance:
    """Run the engine once for the job, under the job's lock, and persist what it decided (its own transaction)."""
    return run_in_transaction(factory, lambda session: _advance(session, job_id))


def advance_in(session: Session, job_id: str, *, dispatch_s: float | None = None) -> Advance:
    """``advance`` inside the caller's transaction, e.g. the one that just finished a node (one commit for both).

    It takes the job's lock first thing, as every writer does, so it may follow any repository or ledger call.
    With ``dispatch_s`` the caller will publish the nodes this run creates right after its commit: they are
    inserted with a dispatch mark that long (``ecoalign.store.recovery``), and ``run`` holds only them; pending nodes
    planned earlier already had their message (the reaper re-publishes one whose mark ran out). Without it,
    ``run`` is every pending node.
    """
    return _advance(session, job_id, dispatch_s=dispatch_s)


GRAPHS = reads.GraphCache()  # this process's copies of the graphs its controller runs read


def _advance(session: Session, job_id: str, *, dispatch_s: float | None = None) -> Advance:
    job = ledger.lock_job_row(session, job_id)
    if job is None:
        raise repository.NotFound(f"no job {job_id}")
    if JobStatus(job.status).terminal:
        return Advance(finished=True, status=job.status)
    if job.status == JobStatus.QUEUED.value:
        repository.start_job(session, job_id)
    spec = cached_job_spec(session, job_id)
    assert spec is not None  # noqa: S101 -- type narrowing of an invariant, not an input check
    dispatch_until = utcnow() + timedelta(seconds=dispatch_s) if dispatch_s is not None else None
    waiting: list[str] = []
    for _ in range(MAX_PLANNING_ROUNDS):
        graph = GRAPHS.load(session, job_id)
        step = spec.engine.step(graph, LedgerView(job.total, job.spent, job.reserved))
        if step.outcome is not None:
            _finish(session, graph, step.outcome)
            return Advance(finished=True, status=JobStatus.SUCCEEDED.value, ended=True)
        waiting = _insert_planned(session, spec, graph, step.new, dispatch_until)
        if waiting or not step.new:
            break
        # Everything planned was settled on insert (a template refusal, a reservation the budget refused):
        # nothing will run to trigger the next step, so the engine looks at the changed graph again now.
    if dispatch_until is not None:
        return Advance(run=tuple(node_id for node_id in waiting if node_id not in graph))
    # The graph as loaded plus what was just planned: the same answer as reloading it, without a second read.
    pending = [n.id for n in graph if n.status is NodeStatus.PENDING]
    pending += [node_id for node_id in waiting if node_id not in graph]
    return Advance(run=tuple(dict.fromkeys(pending)))


def _insert_planned(
    session: Session,
    spec: JobSpec,
    graph: ThoughtGraph,
    planned_nodes: Sequence[PlannedNode],
    dispatch_until: datetime | None = None,
) -> list[str]:
    """Insert the planned nodes (one statement) and reserve their costs (one batch, in order); returns those now
    pending. Parents come from ``graph``, which was just read from this job: no second read to check them."""
    if not planned_nodes:
        return []
    new = set(
        repository.insert_nodes(
            session,
            spec.job_id,
            [repository.PlannedNode(p.as_node(), p.action) for p in planned_nodes],
            known_parents=graph.ids(),
            dispatch_until=dispatch_until,
        )
    )
    to_reserve = [p for p in planned_nodes if p.id in new and p.prefilled_text is None]
    granted = dict(
        zip(
            [p.id for p in to_reserve],
            ledger.reserve_many(
                session, spec.job_id, [(p.id, GENERATE, p.est_tokens) for p in to_reserve], spec.tenant_id
            ),
            strict=True,
        )
    )
    waiting: list[str] = []
    for planned in planned_nodes:
        if planned.id not in new:
            waiting.append(planned.id)  # planned before (a redelivered controller step): the graph already has it
        elif planned.prefilled_text is not None:
            _finish_template(session, spec.job_id, planned)
        elif granted[planned.id]:
            waiting.append(planned.id)
        else:
            repository.finish_node(
                session,
                spec.job_id,
                planned.id,
                NodeStatus.FAILED,
                failure_reason=f"budget exhausted: needed {planned.est_tokens} tokens",
            )
    return waiting


def _finish_template(session: Session, job_id: str, planned: PlannedNode) -> None:
    """Template refusals are written, not generated: safe by construction, no tokens."""
    attempt = repository.claim_node(session, job_id, planned.id, lease_seconds=TEMPLATE_LEASE_S)
    repository.record_generation(
        session,
        job_id,
        planned.id,
        text=planned.prefilled_text or "",
        model="template",
        tokens_prompt=0,
        tokens_completion=0,
        attempt=attempt,
    )
    repository.record_score(
        session,
        job_id,
        planned.id,
        safety=1.0,
        utility=0.0,
        categories={},
        evaluator="template",
        tokens_eval=0,
        attempt=attempt,
    )
    repository.finish_node(session, job_id, planned.id, NodeStatus.DONE, attempt=attempt)


def _finish(session: Session, graph: ThoughtGraph, outcome: Outcome) -> None:
    repository.finish_job(
        session,
        graph.job_id,
        status=JobStatus.SUCCEEDED,
        decision=Decision(outcome.decision),
        response=graph[outcome.node_id].text,
        path=list(outcome.path),
        path_safety=outcome.safety,
        utility=outcome.utility,
        reason=outcome.reason,
    )


def fail_job(factory: sessionmaker[Session], job_id: str, reason: str) -> bool:
    """End the job as failed with ``reason`` (its reservations are released); False if it had already ended."""
    return run_in_transaction(
        factory, lambda s: repository.finish_job(s, job_id, status=JobStatus.FAILED, failure_reason=reason)
    )
