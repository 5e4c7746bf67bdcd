"""One job step: the only place where the engine, the store and the models meet.

Every function here is safe to run more than once for the same input (at-least-once delivery): node ids are
deterministic, inserts are ``ON CONFLICT DO NOTHING``, state changes are conditional, and ledger keys are unique.
Model and evaluator calls happen outside any database transaction.

* ``submit`` creates a job and its root node.
* ``advance`` (the controller) asks the engine for the next actions and writes them: new nodes, budget
  reservations, or the job's final result.
* ``run_node`` executes one node: the scan for the root, else generate → score → settle → verdict. It is split
  into ``generate_node`` and ``score_node`` so a distributed runtime can put the two on different queues.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ecoalign.content import Request
from ecoalign.engine.graph import NodeKind, NodeStatus, ThoughtGraph
from ecoalign.engine.policy import Policy
from ecoalign.engine.prompts import build_messages
from ecoalign.engine.search import LedgerView, Outcome, PlannedNode, Search
from ecoalign.engine.strategies import get_strategy
from ecoalign.evaluators.base import NodeToScore, Score
from ecoalign.providers.base import ProviderError
from ecoalign.runtime.requests import request_from_messages, request_to_messages
from ecoalign.runtime.services import Services
from ecoalign.store import claims, ledger, reads, repository
from ecoalign.store.base import utcnow
from ecoalign.store.db import run_in_transaction
from ecoalign.store.models import Decision, Job, JobStatus

log = logging.getLogger(__name__)

AfterNode = Callable[[Session], None]  # runs in the transaction that finished a node (see ``score_node``)
GENERATE = "generate"
SCAN = "scan"
MAX_PLANNING_ROUNDS = 8  # engine steps per controller run while everything it plans settles at once
MAX_STORED_IMAGE_BYTES = 64 * 1024 * 1024  # the request was validated on the way in; this only guards decoding


class IdempotencyConflict(ValueError):
    """An idempotency key reused with a different request."""


@dataclass(frozen=True)
class Advance:
    """What the controller decided: nodes to run now, or that the job is over."""

    run: tuple[str, ...] = ()
    finished: bool = False
    status: str = ""


@dataclass(frozen=True)
class JobSpec:
    """Everything a step needs from the job row, read once per step."""

    job_id: str
    request: Request
    policy: Policy
    strategy: str
    tenant_id: str | None

    @cached_property
    def engine(self) -> Search:
        """The job's search machine, built once: it holds no state between steps (``Search`` is memoryless)."""
        return self.search()

    def search(self) -> Search:
        return Search(
            self.policy,
            get_strategy(self.strategy),
            request_chars=len(self.request.text),
            image_count=len(self.request.images),
        )


def job_spec(job: Job) -> JobSpec:
    request = request_from_messages(job.request["messages"], max_image_bytes=MAX_STORED_IMAGE_BYTES, max_images=64)
    return JobSpec(job.id, request, Policy.from_dict(job.policy), job.strategy, job.tenant_id)


SPEC_CACHE_SIZE = 256
SPEC_CACHE_MAX_IMAGE_BYTES = 1024 * 1024
_spec_cache: OrderedDict[str, JobSpec] = OrderedDict()
_spec_lock = threading.Lock()


def cached_job_spec(session: Session, job_id: str) -> JobSpec | None:
    """The job's spec, from a small per-process cache when possible (None if there is no such job).

    A job's request, policy, strategy and tenant never change after ``submit``, so a worker need not read and
    decode the job row again for every node. Requests with more than 1 MiB of images are not kept.
    """
    with _spec_lock:
        spec = _spec_cache.get(job_id)
        if spec is not None:
            _spec_cache.move_to_end(job_id)
            return spec
    job = repository.get_job(session, job_id)
    if job is None:
        return None
    spec = job_spec(job)
    if sum(len(image.data) for image in spec.request.images) <= SPEC_CACHE_MAX_IMAGE_BYTES:
        with _spec_lock:
            _spec_cache[job_id] = spec
            while len(_spec_cache) > SPEC_CACHE_SIZE:
                _spec_cache.popitem(last=False)
    return spec


# -- submit -------------------------------------------------------------------------------------------------------
def submit(
    session: Session,
    request: Request,
    policy: Policy,
    *,
    strategy: str = "ecoalign",
    tenant_id: str | None = None,
    idempotency_key: str | None = None,
) -> tuple[str, bool]:
    """Create a queued job and its root node; ``(job_id, created)``. Validates the strategy name first."""
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
    )
    if not created and job.request_fingerprint != fingerprint:
        raise IdempotencyConflict(f"idempotency key {idempotency_key!r} was already used for a different request")
    return job.id, created


# -- the controller -------------------------------------------------------------------------------------------------
def advance(
    factory: sessionmaker[Session],
    job_id: str,
    *,
    dispatch: Callable[[Session, Advance], Advance] | None = None,
) -> Advance:
    """Run the engine once for the job, under the job's lock, and persist what it decided.

    ``dispatch(session, decision)`` runs in the same transaction, still under the lock, and may narrow
    ``decision.run``: the Celery controller uses it to mark the nodes it is about to enqueue, so that the
    many controller runs of a busy job do not enqueue the same pending node again and again.
    """

    def _run(session: Session) -> Advance:
        decision = _advance(session, job_id)
        return dispatch(session, decision) if dispatch is not None and decision.run else decision

    return run_in_transaction(factory, _run)


def advance_in(session: Session, job_id: str, *, dispatch_s: float | None = None) -> Advance:
    """``advance`` inside the caller's transaction, e.g. the one that just finished a node (one commit for both).

    It takes the job's lock first thing, as every writer does, so it may follow any repository or ledger call.
    With ``dispatch_s`` the caller will publish the nodes this run creates right after its commit: they are
    inserted with a dispatch mark that long (``ecoalign.store.recovery``), and ``run`` holds only them; pending nodes
    planned earlier already had their message (the reaper re-publishes one whose mark ran out).
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
    assert spec is not None
    dispatch_until = utcnow() + timedelta(seconds=dispatch_s) if dispatch_s is not None else None
    waiting: list[str] = []
    for _ in range(MAX_PLANNING_ROUNDS):
        graph = GRAPHS.load(session, job_id)
        step = spec.engine.step(graph, LedgerView(job.total, job.spent, job.reserved))
        if step.outcome is not None:
            _finish(session, graph, step.outcome)
            return Advance(finished=True, status=JobStatus.SUCCEEDED.value)
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
    attempt = repository.claim_node(session, job_id, planned.id, lease_seconds=60)
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
    return run_in_transaction(
        factory, lambda s: repository.finish_job(s, job_id, status=JobStatus.FAILED, failure_reason=reason)
    )


# -- one node -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """A claimed node: the job's spec, the node's lineage (the node and its ancestors, not the whole graph)."""

    spec: JobSpec
    graph: ThoughtGraph
    attempt: int


def claim(
    factory: sessionmaker[Session], job_id: str, node_id: str, *, lease_s: float, max_attempts: int | None = None
) -> Claim | None:
    """Take the node (pending, or running past its lease) and read its lineage; None if someone else has it or
    it is finished.

    One transaction, and no job lock: the claim is a conditional ``UPDATE`` of the node's row alone (claimers of
    one node queue on that row; a cancel that commits first makes the claim miss), so many nodes of one job are
    claimed at once. The node's lineage is all its work needs, and it no longer changes.
    """

    def _claim(session: Session) -> Claim | None:
        claimed = claims.claim_lineage(session, job_id, node_id, lease_seconds=lease_s, max_attempts=max_attempts)
        if claimed is None:
            return None
        spec = cached_job_spec(session, job_id)
        assert spec is not None
        return Claim(spec, claimed[1], claimed[0])

    return run_in_transaction(factory, _claim)


def run_node(
    factory: sessionmaker[Session], services: Services, job_id: str, node_id: str, *, lease_s: float = 120
) -> None:
    """Execute one node end to end (the in-process driver's unit of work)."""
    claimed = claim(factory, job_id, node_id, lease_s=lease_s)
    if claimed is None:
        return
    if claimed.graph[node_id].kind is NodeKind.ROOT:
        scan_root(factory, services, claimed)
        return
    result = work_node(factory, services, claimed, node_id)
    if result is not None:
        store_node(factory, result)


def scan_root(
    factory: sessionmaker[Session], services: Services, claimed: Claim, *, then: AfterNode | None = None
) -> None:
    """The global scan: every segment of the request scored on its own; the weakest one is the request's risk.

    ``then(session)`` runs in the same transaction once the root is finished (see ``store_node``).
    """
    job_id, root_id = claimed.spec.job_id, claimed.graph.root.id
    started = time.perf_counter()
    score = services.scanner.scan(claimed.spec.request)
    elapsed = time.perf_counter() - started
    scores = repository.Scores(score.safety, 0.0, dict(score.categories), score.evaluator, score.tokens)

    def _store(session: Session) -> None:
        repository.record_scan(session, job_id, scan_record(score, elapsed))
        if not repository.finish_node(
            session, job_id, root_id, NodeStatus.DONE, attempt=claimed.attempt, scores=scores
        ):
            return
        if score.tokens:
            ledger.settle(session, job_id, root_id, SCAN, score.tokens, calls=1)
        if then:
            then(session)

    run_in_transaction(factory, _store)


def scan_record(score: Score, elapsed_s: float) -> dict[str, Any]:
    return {
        "safety": score.safety,
        "categories": score.categories,
        "evaluator": score.evaluator,
        "model": score.model,
        "tokens": score.tokens,
        "weakest": score.weakest,
        "latency_s": round(elapsed_s, 4),
        "segments": [
            {"kind": s.kind, "index": s.index, "text": s.text, "safety": s.safety, "categories": s.categories}
            for s in score.segments
        ],
    }


def lineage_texts(graph: ThoughtGraph, node_id: str) -> list[str]:
    """Texts of the steps before the node (root excluded), in order."""
    return [n.text for n in graph.lineage(node_id)[:-1] if n.kind is not NodeKind.ROOT]


def call_model(services: Services, claimed: Claim, node_id: str) -> repository.Generation:
    """The model call of a claimed node, as the generation to record (raises ``ProviderError``)."""
    spec, graph = claimed.spec, claimed.graph
    node = graph[node_id]
    action = "merge" if len(node.parents) > 1 else ""
    messages = build_messages(spec.request, node.kind.value, lineage_texts(graph, node_id), action=action)
    max_tokens = {"thought": spec.policy.thought_tokens, "answer": spec.policy.answer_tokens}.get(
        node.kind.value, spec.policy.refusal_tokens
    )
    seed = int(hashlib.sha256(node_id.encode()).hexdigest()[:8], 16)
    completion = services.provider.complete(
        messages, max_tokens=max_tokens, temperature=spec.policy.temperature, seed=seed
    )
    gen_ai = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": getattr(services.provider, "model_id", ""),
        "gen_ai.response.model": completion.model,
        "gen_ai.request.max_tokens": max_tokens,
        "gen_ai.request.temperature": spec.policy.temperature,
        "gen_ai.request.seed": seed,
        "gen_ai.response.finish_reasons": [completion.finish_reason] if completion.finish_reason else [],
        "gen_ai.usage.input_tokens": completion.usage.prompt_tokens,
        "gen_ai.usage.output_tokens": completion.usage.completion_tokens,
        "ecoalign.latency_s": round(completion.latency_s, 4),
    }
    return repository.Generation(
        text=completion.text,
        model=completion.model,
        tokens_prompt=completion.usage.prompt_tokens,
        tokens_completion=completion.usage.completion_tokens,
        prompt=redact_images(messages),
        gen_ai=gen_ai,
    )


def generate_node(
    factory: sessionmaker[Session], services: Services, claimed: Claim, node_id: str
) -> repository.Generation | None:
    """Call the model for a claimed node and store its text (the split flow: scoring is another task's job).

    On a model failure the node is refunded and failed (None). None too if the node is no longer ours.
    """
    try:
        generation = call_model(services, claimed, node_id)
    except ProviderError as exc:
        fail_node(factory, claimed.spec.job_id, node_id, claimed.attempt, f"model call failed: {exc}")
        return None

    return generation if _record_generation(factory, claimed, node_id, generation) else None


def _record_generation(
    factory: sessionmaker[Session], claimed: Claim, node_id: str, generation: repository.Generation
) -> bool:
    """Store a call on its node; if the node is no longer ours (another attempt holds it, or the job ended
    meanwhile) settle it only if the job ended. True if stored."""
    job_id = claimed.spec.job_id

    def _record(session: Session) -> bool:
        recorded = repository.record_generation(
            session,
            job_id,
            node_id,
            text=generation.text,
            model=generation.model,
            tokens_prompt=generation.tokens_prompt,
            tokens_completion=generation.tokens_completion,
            prompt=generation.prompt,
            gen_ai=generation.gen_ai,
            attempt=claimed.attempt,
        )
        if not recorded:
            _settle_if_ended(session, job_id, node_id, generation.tokens_prompt + generation.tokens_completion)
        return recorded

    return run_in_transaction(factory, _record)


def _settle_if_ended(session: Session, job_id: str, node_id: str, tokens: int) -> None:
    """A call that finished after its job ended (cancelled) still cost its tokens: settle them late.

    If the job is still active another attempt holds the node, and that attempt pays for the node.
    """
    job = repository.get_job(session, job_id)
    if job is not None and JobStatus(job.status).terminal:
        ledger.settle(session, job_id, node_id, GENERATE, tokens)


@dataclass(frozen=True)
class NodeResult:
    """A node's work, done outside any transaction, ready to be stored: what ``store_node`` commits."""

    job_id: str
    node_id: str
    attempt: int
    status: NodeStatus
    reason: str | None = None  # prune reason (status pruned) or failure reason (status failed)
    generation: repository.Generation | None = None  # a call made by this attempt (None: recorded earlier)
    scores: repository.Scores | None = None
    spent: int = 0  # tokens the node really cost: its call (made now or recorded earlier) and its evaluation


def work_node(
    factory: sessionmaker[Session], services: Services, claimed: Claim, node_id: str
) -> NodeResult | None:
    """Generate (unless a generation is recorded) and score a claimed node, and take the engine's verdict.

    Nothing is written here except a failure: a model that fails (after the provider's retries) fails and
    refunds the node at once (None). The rest goes to ``store_node``, which commits the node's text, scores,
    status and charge in one transaction, so generating and scoring in one task costs one commit. A worker that
    dies before it loses the call; the next attempt makes it again (only a recorded call is ever charged).
    """
    spec, graph = claimed.spec, claimed.graph
    node = graph[node_id]
    generation: repository.Generation | None = None
    if node.model:  # an earlier attempt recorded the call (the split flow) and died before scoring it
        spent = node.tokens
    else:
        try:
            generation = call_model(services, claimed, node_id)
        except ProviderError as exc:
            fail_node(factory, spec.job_id, node_id, claimed.attempt, f"model call failed: {exc}")
            return None
        node.text, node.model = generation.text, generation.model
        spent = generation.tokens_prompt + generation.tokens_completion
    try:
        return score_claimed(services, claimed, node_id, generation=generation, spent=spent)
    except Exception:
        if generation is not None:  # an evaluator bug: keep the call, so a retry scores it instead of calling again
            _record_generation(factory, claimed, node_id, generation)
        raise


def score_claimed(
    services: Services,
    claimed: Claim,
    node_id: str,
    *,
    generation: repository.Generation | None,
    spent: int,
) -> NodeResult:
    """Score a generated node of a claimed lineage and take the engine's verdict (no I/O but the evaluator's)."""
    spec, graph = claimed.spec, claimed.graph
    node = graph[node_id]
    try:
        score = services.evaluator.score_node(
            NodeToScore(spec.request, node.kind.value, node.text, tuple(lineage_texts(graph, node_id)))
        )
    except ProviderError as exc:
        return NodeResult(spec.job_id, node_id, claimed.attempt, NodeStatus.FAILED, f"evaluator failed: {exc}",
                          generation=generation, spent=spent)
    scores = repository.Scores(score.safety, score.utility, dict(score.categories), score.evaluator, score.tokens)
    # The verdict reads the node's lineage, which was final before the node was planned: the lineage loaded at
    # the claim, with this node's new scores, is enough (no read of the graph under the job's lock).
    node.safety, node.utility, node.categories = score.safety, score.utility, dict(score.categories)
    status, reason = spec.engine.verdict(graph, node_id)
    return NodeResult(spec.job_id, node_id, claimed.attempt, status, reason, generation, scores, spent + score.tokens)


def store_node(factory: sessionmaker[Session], result: NodeResult, *, then: AfterNode | None = None) -> bool:
    """Commit a node's result: text, scores and status in one ``UPDATE``, its charge settled, then ``then``.

    The node is finished only if it is still running under the attempt that did the work; the charge is settled
    after that, so only the attempt that owns the node pays (a stale attempt's call is settled only if the job
    ended meanwhile: its tokens were spent). ``then(session)`` runs in the same transaction right after: the
    distributed runtime runs the controller there (``advance_in``), so finishing a node and planning the next
    ones commit together. True if this call finished the node.
    """
    failed = result.status is NodeStatus.FAILED

    def _store(session: Session) -> bool:
        if not repository.finish_node(
            session,
            result.job_id,
            result.node_id,
            result.status,
            prune_reason=None if failed else result.reason,
            failure_reason=result.reason[:2000] if failed and result.reason else None,
            attempt=result.attempt,
            generation=result.generation,
            scores=result.scores,
        ):
            if result.generation is not None:
                _settle_if_ended(session, result.job_id, result.node_id, result.spent)
            return False
        ledger.settle(session, result.job_id, result.node_id, GENERATE, result.spent)
        if then:
            then(session)
        return True

    if failed:
        log.warning("node %s of job %s failed: %s", result.node_id, result.job_id, result.reason)
    return run_in_transaction(factory, _store)


def score_node(
    factory: sessionmaker[Session],
    services: Services,
    job_id: str,
    node_id: str,
    attempt: int,
    *,
    then: AfterNode | None = None,
) -> bool:
    """The split flow's second half: score a node another task generated, settle it, give the verdict.

    A redelivered or stale call (the node is no longer running under ``attempt``) returns before the evaluator
    runs (False). True when this call scored (or failed) the node.
    """

    def _load(session: Session) -> Claim | None:
        spec = cached_job_spec(session, job_id)
        graph, row = reads.load_lineage_with_row(session, job_id, node_id)
        assert spec is not None and row is not None
        if row.status != NodeStatus.RUNNING.value or row.attempts != attempt:
            if row.attempts == attempt:  # ours, but finished by someone else: cancelled with its job?
                _settle_if_ended(session, job_id, node_id, row.tokens_prompt + row.tokens_completion)
            return None
        return Claim(spec, graph, attempt)

    claimed = run_in_transaction(factory, _load)
    if claimed is None:
        return False
    node = claimed.graph[node_id]
    result = score_claimed(services, claimed, node_id, generation=None, spent=node.tokens)
    store_node(factory, result, then=then)
    return True


def fail_node(
    factory: sessionmaker[Session],
    job_id: str,
    node_id: str,
    attempt: int | None,
    reason: str,
    *,
    spent: int = 0,
    then: AfterNode | None = None,
) -> None:
    """A node that cannot be completed: pay for what was really spent, release the rest, keep the reason."""

    def _fail(session: Session) -> None:
        failed = repository.finish_node(
            session, job_id, node_id, NodeStatus.FAILED, failure_reason=reason[:2000], attempt=attempt
        )
        if spent:
            ledger.settle(session, job_id, node_id, GENERATE, spent)
        else:
            ledger.refund(session, job_id, node_id, GENERATE)
        if failed and then:
            then(session)

    log.warning("node %s of job %s failed: %s", node_id, job_id, reason)
    run_in_transaction(factory, _fail)


def redact_images(messages: list[dict]) -> list[dict]:
    """The prompt as stored in the trace: image bytes replaced by their hash (the request row keeps them)."""
    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            content = [
                {"type": "image_url", "image_url": {"url": "sha256:" + _sha256(p["image_url"]["url"])}}
                if p.get("type") == "image_url"
                else p
                for p in content
            ]
        out.append({**message, "content": content})
    return out


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
