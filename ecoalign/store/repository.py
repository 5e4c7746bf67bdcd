"""Typed helpers the runtime calls: jobs, the thought graph's nodes and edges, leases and results (tenants and
their keys: ``tenants``; graph reads: ``reads``; the claim with its lineage read: ``claims``).

Every write is **conditional** on the state it expects (``WHERE status = 'running' AND attempts = :attempt``),
so a redelivered task, a worker whose lease expired, or a second controller changes nothing and learns so from
the return value. None of them commits: the caller owns the transaction.

Lock order (Postgres; on SQLite ``BEGIN IMMEDIATE`` already serialises writers): **jobs → nodes/edges →
ledger_entries → tenants → tenant_daily_usage**. Every function here that writes and may share a transaction with
another locks the job row first (once per transaction: ``ledger.LockedJob``), as the ledger does, so any mix of
these calls in one transaction cannot deadlock with another such mix; and because writers of one job queue on its
row, "finish a node, then count the job's in-flight nodes" in one transaction lets exactly one of several
concurrent finishers see zero (fan-in counted in the database). ``claim_node``, ``renew_lease``,
``record_generation`` and ``record_score`` change one node row alone under its own conditions and take no job
lock: a caller that runs them in a transaction with other writes takes the job's lock first.
Never keep a transaction open across a model call.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from ecoalign.engine.graph import GraphError, Node, NodeKind, NodeStatus, node_id
from ecoalign.store import ledger, webhooks
from ecoalign.store.base import new_id, utcnow
from ecoalign.store.db import dialect_insert, insert_ignoring_conflicts
from ecoalign.store.errors import NotFound
from ecoalign.store.models import ACTIVE_JOB_STATUSES, Decision, Edge, Job, JobStatus, LedgerKind, NodeRow
from ecoalign.store.pagination import Page, keyset_page
from ecoalign.store.reads import IN_FLIGHT

JOBS = cast(Table, Job.__table__)
NODES = cast(Table, NodeRow.__table__)
EDGES = cast(Table, Edge.__table__)

DEFAULT_ACTIONS: dict[NodeKind, str] = {
    NodeKind.ROOT: "scan",
    NodeKind.THOUGHT: "think",
    NodeKind.ANSWER: "answer",
    NodeKind.REFUSAL: "refuse",
}


@dataclass(frozen=True)
class PlannedNode:
    """A node to insert, with what the graph type does not carry: the action that makes it and its prompt."""

    node: Node
    action: str = ""  # default: from the kind (think / answer / refuse / scan)
    prompt: list[dict[str, Any]] | None = None


def _rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


def _lock_job_status(session: Session, job_id: str) -> str:
    """Lock the job row (first in the lock order; once per transaction) and return its status."""
    job = ledger.lock_job_row(session, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job.status


def _set_locked_status(session: Session, job_id: str, status: str) -> None:
    job = ledger.held_job_row(session, job_id)
    if job is not None:
        job.status = status


# -- jobs ----------------------------------------------------------------------------------------------------------
def create_job(
    session: Session,
    *,
    strategy: str,
    request: dict[str, Any],
    policy: dict[str, Any],
    budget_total: int,
    tenant_id: str | None = None,
    idempotency_key: str | None = None,
    request_fingerprint: str = "",
    root_text: str = "",
    job_id: str | None = None,
) -> tuple[Job, bool]:
    """Create a queued job and its root node; ``(job, created)``.

    With an ``idempotency_key`` (unique per tenant, and among tenant-less jobs) a second call returns the first
    job and ``created=False``; the caller should compare ``request_fingerprint`` and reject a different request
    reusing a key. The root node id is ``graph.node_id(job.id, "root", ())``.
    """
    now = utcnow()
    job_id = job_id or new_id()
    inserted = session.execute(
        dialect_insert(session, JOBS)
        .values(
            id=job_id,
            tenant_id=tenant_id,
            status=JobStatus.QUEUED.value,
            strategy=strategy,
            request=request,
            request_fingerprint=request_fingerprint,
            policy=policy,
            idempotency_key=idempotency_key,
            budget_total=budget_total,
            budget_spent=0,
            budget_reserved=0,
            model_calls=0,
            created_at=now,
            updated_at=now,
            version=1,
        )
        .on_conflict_do_nothing()
        .returning(JOBS.c.id)
    ).first()
    if inserted is None:
        existing = None if idempotency_key is None else job_for_key(session, tenant_id, idempotency_key)
        if existing is None:
            existing = session.get(Job, job_id)
        if existing is None:
            raise RuntimeError(f"job insert conflicted but no job {job_id} / key {idempotency_key!r} found")
        return existing, False
    root = Node(id=node_id(job_id, NodeKind.ROOT, ()), kind=NodeKind.ROOT, text=root_text)
    insert_nodes(session, job_id, [root])
    job = session.get(Job, job_id)
    assert job is not None  # noqa: S101 -- type narrowing of an invariant, not an input check
    return job, True


def job_for_key(session: Session, tenant_id: str | None, idempotency_key: str) -> Job | None:
    """The job this idempotency key created for the tenant (or among tenant-less jobs), if any."""
    tenant_match = Job.tenant_id.is_(None) if tenant_id is None else Job.tenant_id == tenant_id
    return session.scalars(select(Job).where(tenant_match, Job.idempotency_key == idempotency_key)).first()


def get_job(session: Session, job_id: str) -> Job | None:
    """The job as committed now (refreshes any copy already in the session)."""
    return session.scalars(select(Job).where(Job.id == job_id).execution_options(populate_existing=True)).first()


def get_tenant_job(session: Session, job_id: str, tenant_id: str) -> Job | None:
    """The tenant's job as committed now; None for another tenant's job too (ids are not disclosed)."""
    return session.scalars(
        select(Job).where(Job.id == job_id, Job.tenant_id == tenant_id).execution_options(populate_existing=True)
    ).first()


def list_jobs(
    session: Session, tenant_id: str, *, limit: int, after: str | None = None, status: str | None = None
) -> Page[Job]:
    """The tenant's jobs, newest first, optionally in one status (``pagination.keyset_page``: ``after`` is the
    last id of the previous page; raises ``pagination.InvalidCursor`` for one that is not the tenant's)."""
    filters = [Job.status == status] if status is not None else []
    return keyset_page(session, Job, scope=[Job.tenant_id == tenant_id], filters=filters, limit=limit, after=after)


def lock_job(session: Session, job_id: str) -> Job | None:
    """The job, locked until the transaction ends (``SELECT ... FOR UPDATE`` on Postgres).

    The controller calls this first, so two controller runs of one job never interleave. On SQLite it is a plain
    read: the transaction already holds the database write lock.
    """
    return session.scalars(
        select(Job).where(Job.id == job_id).with_for_update().execution_options(populate_existing=True)
    ).first()


def start_job(session: Session, job_id: str, *, now: datetime | None = None) -> bool:
    """``queued → running``; False if it was not queued (already started, finished or cancelled)."""
    done = session.execute(
        update(JOBS)
        .where(JOBS.c.id == job_id, JOBS.c.status == JobStatus.QUEUED.value)
        .values(status=JobStatus.RUNNING.value, started_at=now or utcnow(), version=JOBS.c.version + 1)
    )
    if _rowcount(done) != 1:
        return False
    _set_locked_status(session, job_id, JobStatus.RUNNING.value)
    return True


def record_scan(session: Session, job_id: str, scan: dict[str, Any]) -> bool:
    """Store the global scanner's segment scores on an active job."""
    done = session.execute(
        update(JOBS)
        .where(JOBS.c.id == job_id, JOBS.c.status.in_(ACTIVE_JOB_STATUSES))
        .values(scan=scan, version=JOBS.c.version + 1)
    )
    return _rowcount(done) == 1


def finish_job(
    session: Session,
    job_id: str,
    *,
    status: JobStatus | str,
    decision: Decision | str | None = None,
    response: str | None = None,
    path: Sequence[str] | None = None,
    path_safety: float | None = None,
    utility: float | None = None,
    reason: str | None = None,
    failure_reason: str | None = None,
    release: bool = True,
) -> bool:
    """Move an active job to a terminal status with its result; False if it already was terminal.

    The winner also refunds every reservation still held (``ledger.release_all``) in the same transaction.
    """
    status_ = JobStatus(status)
    if not status_.terminal:
        raise ValueError(f"{status_} is not a terminal job status")
    finished = session.execute(
        update(JOBS)
        .where(JOBS.c.id == job_id, JOBS.c.status.in_(ACTIVE_JOB_STATUSES))
        .values(
            status=status_.value,
            decision=Decision(decision).value if decision is not None else None,
            response=response,
            path=list(path) if path is not None else None,
            path_safety=path_safety,
            utility=utility,
            reason=reason,
            failure_reason=failure_reason,
            finished_at=utcnow(),
            version=JOBS.c.version + 1,
        )
        .returning(JOBS.c.tenant_id)
    ).first()
    if finished is None:
        return False
    _set_locked_status(session, job_id, status_.value)
    # The webhook event (job.succeeded / job.failed / job.cancelled) in this transaction: every job ends here.
    webhooks.record_event(session, finished.tenant_id, f"job.{status_.value}", job_id, {
        "id": job_id, "object": "job", "status": status_.value,
        "decision": Decision(decision).value if decision is not None else None, "failure_reason": failure_reason,
    })
    if release:
        ledger.release_all(session, job_id)
    return True


def cancel_job(session: Session, job_id: str, *, reason: str = "cancelled") -> bool:
    """Cancel an active job: its in-flight nodes become ``failed`` and its reservations are refunded.

    A worker whose call is still in flight will find its node no longer running (its writes return False) but
    must still ``ledger.settle`` its key: the late settle charges what the call really cost.
    """
    if not finish_job(session, job_id, status=JobStatus.CANCELLED, failure_reason=reason, release=False):
        return False
    recorded = session.execute(
        update(NODES)
        .where(NODES.c.job_id == job_id, NODES.c.status.in_(IN_FLIGHT))
        .values(
            status=NodeStatus.FAILED.value, failure_reason=f"job {reason}", finished_at=utcnow(), lease_expires_at=None
        )
        .returning(NODES.c.id, NODES.c.tokens_prompt, NODES.c.tokens_completion, NODES.c.tokens_eval)
    ).all()
    for row in recorded:  # a call recorded on a node in flight (its scoring was to be retried) was really spent
        spent = int(row.tokens_prompt) + int(row.tokens_completion) + int(row.tokens_eval)
        if spent:
            ledger.settle(session, job_id, row.id, LedgerKind.GENERATE, spent)
    ledger.release_all(session, job_id)
    return True


# -- the graph -----------------------------------------------------------------------------------------------------
def insert_nodes(
    session: Session,
    job_id: str,
    nodes: Iterable[Node | PlannedNode],
    *,
    known_parents: Collection[str] = (),
    dispatch_until: datetime | None = None,
) -> list[str]:
    """Insert planned nodes and their edges; returns the ids that were new (idempotent).

    The ids are deterministic (``graph.node_id``), so a redelivered planning step inserts nothing
    (``INSERT ... ON CONFLICT DO NOTHING`` on both dialects). Parents must already exist, or come earlier
    in ``nodes``, and belong to the same job: they are checked with a read unless every one is in
    ``known_parents`` (nodes of this job the caller has just read) or in ``nodes``. ``dispatch_until`` sets the
    dispatch mark of the new pending nodes (``ecoalign.store.recovery``): the caller publishes them after its commit.
    """
    planned = [n if isinstance(n, PlannedNode) else PlannedNode(n) for n in nodes]
    if not planned:
        return []
    _lock_job_status(session, job_id)
    now = utcnow()
    # Stagger created_at by microseconds so the batch keeps its order when loaded back.
    rows = [
        {
            "id": p.node.id,
            "job_id": job_id,
            "kind": NodeKind(p.node.kind).value,
            "depth": p.node.depth,
            "ordinal": p.node.ordinal,
            "action": p.action or DEFAULT_ACTIONS[NodeKind(p.node.kind)],
            "status": NodeStatus(p.node.status).value,
            "text": p.node.text,
            "prompt": p.prompt,
            "model": p.node.model,
            "evaluator": p.node.evaluator,
            "safety": p.node.safety,
            "utility": p.node.utility,
            "categories": dict(p.node.categories),
            "tokens_prompt": 0,
            "tokens_completion": 0,
            "tokens_eval": 0,
            "tokens": p.node.tokens,
            "est_tokens": p.node.est_tokens,
            "prune_reason": p.node.prune_reason,
            "failure_reason": p.node.failure_reason,
            "reason": p.node.reason,
            "attempts": 0,
            "created_at": now + timedelta(microseconds=i),
            "lease_expires_at": dispatch_until if NodeStatus(p.node.status) is NodeStatus.PENDING else None,
        }
        for i, p in enumerate(planned)
    ]
    # executemany form: one compiled statement whatever the batch size (SQLAlchemy sends it as one INSERT)
    new_ids = set(session.scalars(insert_ignoring_conflicts(session, NODES, NODES.c.id), rows))
    edges = [
        {"job_id": job_id, "parent_id": parent, "child_id": p.node.id} for p in planned for parent in p.node.parents
    ]
    if edges:
        parent_ids = {e["parent_id"] for e in edges}
        unchecked = parent_ids - set(known_parents) - {p.node.id for p in planned}
        found = {} if not unchecked else {
            row.id: row.job_id
            for row in session.execute(select(NODES.c.id, NODES.c.job_id).where(NODES.c.id.in_(unchecked)))
        }
        wrong = sorted(pid for pid in unchecked if found.get(pid) != job_id)
        if wrong:
            raise GraphError(f"parents not in job {job_id}: {wrong}")
        session.execute(insert_ignoring_conflicts(session, EDGES), edges)
    return [p.node.id for p in planned if p.node.id in new_ids]


def load_nodes(session: Session, job_id: str) -> list[NodeRow]:
    """The job's node rows in creation order (with every stored column: prompt, timings, gen_ai...)."""
    return list(
        session.scalars(
            select(NodeRow)
            .where(NodeRow.job_id == job_id)
            .order_by(NodeRow.created_at, NodeRow.depth, NodeRow.ordinal, NodeRow.id)
            .execution_options(populate_existing=True)
        )
    )


def get_node(session: Session, node_id_: str) -> NodeRow | None:
    return session.scalars(
        select(NodeRow).where(NodeRow.id == node_id_).execution_options(populate_existing=True)
    ).first()


def count_in_flight(session: Session, job_id: str) -> int:
    """Nodes of the job still ``pending`` or ``running`` (the fan-in counter; see the module docstring)."""
    return int(
        session.execute(
            select(func.count()).select_from(NODES).where(NODES.c.job_id == job_id, NODES.c.status.in_(IN_FLIGHT))
        ).scalar_one()
    )


# -- leases and results ------------------------------------------------------------------------------------------
def claim_node(
    session: Session,
    job_id: str,
    node_id_: str,
    *,
    lease_seconds: float,
    now: datetime | None = None,
    max_attempts: int | None = None,
    max_crashes: int | None = None,
) -> int | None:
    """Take a node to work on: ``pending → running``, or re-take a ``running`` one whose lease expired.

    Returns the attempt number (1, 2, ...) if this caller won, ``None`` otherwise (someone else holds it, it is
    finished, the job is no longer active, or a poison limit is reached: ``max_attempts`` failures raised while
    running it, or ``max_crashes`` attempts lost to crashes, ``attempts - failures``). Pass the attempt to the
    ``record_*``/``finish_node`` calls: a worker that lost its lease then cannot overwrite the new holder's work.
    """
    params = claim_parameters(
        job_id, node_id_, lease_seconds=lease_seconds, now=now, max_attempts=max_attempts, max_crashes=max_crashes
    )
    row = session.execute(claim_statement("b_cap" in params), params).first()
    return int(row[0]) if row is not None else None


NO_CAP = 2**31 - 1


def claim_parameters(
    job_id: str,
    node_id_: str,
    *,
    lease_seconds: float,
    now: datetime | None = None,
    max_attempts: int | None = None,
    max_crashes: int | None = None,
) -> dict[str, Any]:
    """The bind parameters of ``claim_statement`` (``b_cap``/``b_crash_cap`` only when a limit is given)."""
    now = now or utcnow()
    params: dict[str, Any] = {
        "b_node": node_id_,
        "b_job": job_id,
        "b_now": now,
        "b_lease": now + timedelta(seconds=lease_seconds),
    }
    if max_attempts is not None or max_crashes is not None:
        params["b_cap"] = NO_CAP if max_attempts is None else max_attempts
        params["b_crash_cap"] = NO_CAP if max_crashes is None else max_crashes
    return params


@functools.lru_cache(maxsize=2)
def claim_statement(capped: bool) -> Any:
    """The claim's conditional ``UPDATE … RETURNING attempts``, built once (with or without the poison limits:
    failures below ``b_cap``, crash-lost attempts below ``b_crash_cap``)."""
    active_job = (
        select(JOBS.c.id)
        .where(JOBS.c.id == bindparam("b_job"), JOBS.c.status.in_(ACTIVE_JOB_STATUSES))
        .exists()
    )
    conditions = [
        NODES.c.id == bindparam("b_node"),
        NODES.c.job_id == bindparam("b_job"),
        active_job,
        or_(
            NODES.c.status == NodeStatus.PENDING.value,
            and_(NODES.c.status == NodeStatus.RUNNING.value, NODES.c.lease_expires_at < bindparam("b_now")),
        ),
    ]
    if capped:
        conditions.append(NODES.c.failures < bindparam("b_cap"))
        conditions.append(NODES.c.attempts - NODES.c.failures < bindparam("b_crash_cap"))
    return (
        update(NODES)
        .where(*conditions)
        .values(
            status=NodeStatus.RUNNING.value,
            attempts=NODES.c.attempts + 1,
            lease_expires_at=bindparam("b_lease"),
            started_at=func.coalesce(NODES.c.started_at, bindparam("b_now")),
        )
        .returning(NODES.c.attempts)
    )


def _held(job_id: str, node_id_: str, attempt: int | None) -> list[Any]:
    conditions = [NODES.c.id == node_id_, NODES.c.job_id == job_id, NODES.c.status == NodeStatus.RUNNING.value]
    if attempt is not None:
        conditions.append(NODES.c.attempts == attempt)
    return conditions


def renew_lease(
    session: Session,
    job_id: str,
    node_id_: str,
    attempt: int,
    *,
    lease_seconds: float,
    now: datetime | None = None,
) -> bool:
    """Extend the lease of a node this caller still holds (a heartbeat for long calls)."""
    now = now or utcnow()
    done = session.execute(
        update(NODES)
        .where(*_held(job_id, node_id_, attempt))
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
    )
    return _rowcount(done) == 1


def hand_back(session: Session, job_id: str, node_id_: str, attempt: int, *, now: datetime | None = None) -> int | None:
    """Count a failure raised while running the node (not a crash) and end its lease now, so the reaper hands it
    out again; returns the node's failures so far, None if this attempt no longer holds it."""
    now = now or utcnow()
    row = session.execute(
        update(NODES)
        .where(*_held(job_id, node_id_, attempt))
        .values(lease_expires_at=now, failures=NODES.c.failures + 1)
        .returning(NODES.c.failures)
    ).first()
    return None if row is None else int(row[0])


def record_late_usage(
    session: Session, job_id: str, node_id_: str, generation: Generation, tokens_eval: int = 0
) -> bool:
    """Put a call that finished after its node was failed by a cancel on that node (text, model, usage, c(v)),
    so the graph shows what the ledger charged; once only (a node without a recorded call)."""
    done = session.execute(
        update(NODES)
        .where(NODES.c.id == node_id_, NODES.c.job_id == job_id, NODES.c.status == NodeStatus.FAILED.value,
               NODES.c.model == "")
        .values(
            **generation.columns(),
            tokens_eval=tokens_eval,
            tokens=generation.tokens_prompt + generation.tokens_completion + tokens_eval,
        )
    )
    return _rowcount(done) == 1


@dataclass(frozen=True)
class Generation:
    """What a model call left on its node: the text, the model that wrote it, its usage and trace fields."""

    text: str
    model: str
    tokens_prompt: int
    tokens_completion: int
    prompt: list[dict[str, Any]] | None = None
    gen_ai: dict[str, Any] | None = None

    def columns(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "text": self.text,
            "model": self.model,
            "tokens_prompt": self.tokens_prompt,
            "tokens_completion": self.tokens_completion,
        }
        if self.prompt is not None:
            values["prompt"] = self.prompt
        if self.gen_ai is not None:
            values["gen_ai"] = self.gen_ai
        return values


@dataclass(frozen=True)
class Scores:
    """What the evaluator said of a node, and what saying it cost."""

    safety: float
    utility: float
    categories: dict[str, float]
    evaluator: str
    tokens_eval: int

    def columns(self) -> dict[str, Any]:
        return {
            "safety": self.safety,
            "utility": self.utility,
            "categories": dict(self.categories),
            "evaluator": self.evaluator,
            "tokens_eval": self.tokens_eval,
        }


# How an update sets ``tokens`` (c(v) = prompt + completion + evaluation tokens): from the columns it sets, the
# rest from the row; or to a given total.
_TOKENS_PARTS = ("tokens_prompt", "tokens_completion", "tokens_eval")


@functools.lru_cache(maxsize=64)
def _node_update(holder: str, columns: tuple[str, ...], tokens: str) -> Any:
    """A conditional ``UPDATE`` of one node, built once per shape (which columns, whose node, how ``tokens``).

    ``holder``: "attempt" (running under ``b_attempt``), "running", or "in_flight" (pending or running).
    ``tokens``: "" (unchanged), "sum" (the three parts, from the values set or the row), "given" (``v_tokens``).
    Values are the parameters ``v_<column>``.
    """
    conditions = [NODES.c.id == bindparam("b_node"), NODES.c.job_id == bindparam("b_job")]
    if holder == "in_flight":
        conditions.append(NODES.c.status.in_(IN_FLIGHT))
    else:
        conditions.append(NODES.c.status == NodeStatus.RUNNING.value)
    if holder == "attempt":
        conditions.append(NODES.c.attempts == bindparam("b_attempt"))
    values: dict[str, Any] = {name: bindparam(f"v_{name}", type_=NODES.c[name].type) for name in columns}
    if tokens == "sum":
        parts = [values[name] if name in values else NODES.c[name] for name in _TOKENS_PARTS]
        values["tokens"] = parts[0] + parts[1] + parts[2]
    elif tokens == "given":
        values["tokens"] = bindparam("v_tokens", type_=NODES.c.tokens.type)
    return update(NODES).where(*conditions).values(**values)


def _update_node(
    session: Session,
    job_id: str,
    node_id_: str,
    attempt: int | None,
    columns: dict[str, Any],
    *,
    holder: str | None = None,
    tokens: int | None = None,
) -> bool:
    holder = holder or ("running" if attempt is None else "attempt")
    mode = "given" if tokens is not None else ("sum" if any(n in columns for n in _TOKENS_PARTS) else "")
    statement = _node_update(holder, tuple(sorted(columns)), mode)
    params = {f"v_{name}": value for name, value in columns.items()}
    params.update(b_node=node_id_, b_job=job_id)
    if holder == "attempt":
        params["b_attempt"] = attempt
    if tokens is not None:
        params["v_tokens"] = tokens
    return _rowcount(session.execute(statement, params)) == 1


def record_generation(
    session: Session,
    job_id: str,
    node_id_: str,
    *,
    text: str,
    model: str,
    tokens_prompt: int,
    tokens_completion: int,
    prompt: list[dict[str, Any]] | None = None,
    gen_ai: dict[str, Any] | None = None,
    attempt: int | None = None,
) -> bool:
    """Store a running node's generated text and its usage; False if the node is not running (for this attempt).

    Only the node's row changes, under its own conditions: no job lock is needed.
    """
    generation = Generation(text, model, tokens_prompt, tokens_completion, prompt, gen_ai)
    return _update_node(session, job_id, node_id_, attempt, generation.columns())


def record_score(
    session: Session,
    job_id: str,
    node_id_: str,
    *,
    safety: float,
    utility: float,
    categories: dict[str, float],
    evaluator: str,
    tokens_eval: int,
    attempt: int | None = None,
) -> bool:
    """Store a running node's evaluator scores and their cost; ``tokens`` becomes the node's c(v)."""
    scores = Scores(safety, utility, dict(categories), evaluator, tokens_eval)
    return _update_node(session, job_id, node_id_, attempt, scores.columns())


def finish_node(
    session: Session,
    job_id: str,
    node_id_: str,
    status: NodeStatus | str,
    *,
    prune_reason: str | None = None,
    failure_reason: str | None = None,
    tokens: int | None = None,
    attempt: int | None = None,
    generation: Generation | None = None,
    scores: Scores | None = None,
) -> bool:
    """Move an in-flight node to ``done``, ``pruned`` or ``failed``; False if it was already finished.

    With ``attempt`` only that attempt's holder may finish it (a pending node has no holder: pass no attempt
    to prune or fail a node that never ran). ``tokens`` overrides c(v) (e.g. to add rollout tokens).
    ``generation`` and ``scores`` are recorded by the same statement (as ``record_generation`` and
    ``record_score`` would): finishing a node that was generated and scored in one task is one ``UPDATE``.
    Takes the job's lock first, as every writer that may be followed by the controller does (lock order).
    """
    status_ = NodeStatus(status)
    if not status_.settled:
        raise ValueError(f"{status_} is not a finished node status")
    _lock_job_status(session, job_id)
    columns: dict[str, Any] = {}
    if generation is not None:
        columns.update(generation.columns())
    if scores is not None:
        columns.update(scores.columns())
    columns.update(
        status=status_.value,
        finished_at=utcnow(),
        lease_expires_at=None,
        prune_reason=prune_reason,
        failure_reason=failure_reason,
    )
    holder = "attempt" if attempt is not None else "in_flight"
    return _update_node(session, job_id, node_id_, attempt, columns, holder=holder, tokens=tokens)


def prune_node(session: Session, job_id: str, node_id_: str, reason: str) -> bool:
    """Mark a node pruned (from pending, running or done): it stays in the trace with the reason."""
    _lock_job_status(session, job_id)
    done = session.execute(
        update(NODES)
        .where(
            NODES.c.id == node_id_,
            NODES.c.job_id == job_id,
            NODES.c.status.in_((*IN_FLIGHT, NodeStatus.DONE.value)),
        )
        .values(
            status=NodeStatus.PRUNED.value,
            prune_reason=reason,
            lease_expires_at=None,
            finished_at=func.coalesce(NODES.c.finished_at, utcnow()),
        )
    )
    return _rowcount(done) == 1


def find_stuck_nodes(
    session: Session,
    *,
    now: datetime | None = None,
    job_id: str | None = None,
    limit: int = 100,
) -> list[NodeRow]:
    """Running nodes of active jobs whose lease has expired (their worker died): candidates to re-dispatch."""
    now = now or utcnow()
    query = (
        select(NodeRow)
        .join(Job, Job.id == NodeRow.job_id)
        .where(
            NodeRow.status == NodeStatus.RUNNING.value,
            NodeRow.lease_expires_at < now,
            Job.status.in_(ACTIVE_JOB_STATUSES),
        )
        .order_by(NodeRow.lease_expires_at)
        .limit(limit)
    )
    if job_id is not None:
        query = query.where(NodeRow.job_id == job_id)
    return list(session.scalars(query))
