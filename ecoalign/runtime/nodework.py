"""One node's work: claim it, do the work outside any transaction, and write what came out.

Every function is safe to run more than once for the same node (at-least-once delivery): the claim is a
conditional ``UPDATE`` that bumps the attempt, a node is finished only under the attempt that did the work, and
ledger keys are unique. Model and evaluator calls happen outside any database transaction.

The work returns a value (``NodeResult``, ``ScanResult`` or ``NodeFailure``: a ``NodeOutcome``) and
``write_outcome`` stores it in the caller's transaction; ``ecoalign.runtime.commit`` decides what else that
transaction does (the controller's next step).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from ecoalign.engine.graph import NodeKind, NodeStatus, ThoughtGraph
from ecoalign.engine.prompts import build_messages
from ecoalign.evaluators.base import NodeToScore, Score
from ecoalign.providers.base import ProviderError
from ecoalign.runtime.jobspec import JobSpec, cached_job_spec
from ecoalign.runtime.services import Services
from ecoalign.runtime.traces import redact_images, scan_record
from ecoalign.store import claims, ledger, repository
from ecoalign.store.db import run_in_transaction
from ecoalign.store.models import JobStatus

log = logging.getLogger(__name__)

GENERATE = "generate"  # ledger purpose of a node's model call
SCAN = "scan"  # ledger purpose of the root's scan
MAX_REASON_CHARS = 2000


@dataclass(frozen=True)
class Claim:
    """A claimed node: the job's spec, the node's lineage (the node and its ancestors, not the whole graph)."""

    spec: JobSpec
    graph: ThoughtGraph
    attempt: int


@dataclass(frozen=True)
class NodeResult:
    """A generated node's work, done outside any transaction, ready to be stored in one ``UPDATE``."""

    job_id: str
    node_id: str
    attempt: int
    status: NodeStatus
    reason: str | None = None  # prune reason (status pruned) or failure reason (status failed)
    generation: repository.Generation | None = None  # a call made by this attempt (None: recorded earlier)
    scores: repository.Scores | None = None
    spent: int = 0  # tokens the node really cost: its call (made now or recorded earlier) and its evaluation


@dataclass(frozen=True)
class ScanResult:
    """The root's scan: every segment of the request scored on its own; the weakest one is the request's risk."""

    job_id: str
    node_id: str
    attempt: int
    score: Score
    elapsed_s: float


@dataclass(frozen=True)
class NodeFailure:
    """A node that cannot be completed: it pays for what was really spent (``spent``), the rest is released."""

    job_id: str
    node_id: str
    attempt: int | None  # None: whatever attempt holds it (the in-process driver)
    reason: str
    spent: int = 0


NodeOutcome = NodeResult | ScanResult | NodeFailure


# -- claim ----------------------------------------------------------------------------------------------------------
def claim(
    factory: sessionmaker[Session],
    job_id: str,
    node_id: str,
    *,
    lease_s: float,
    max_attempts: int | None = None,
    max_crashes: int | None = None,
) -> Claim | None:
    """Take the node (pending, or running past its lease) and read its lineage; None if someone else has it or
    it is finished.

    One transaction, and no job lock: the claim is a conditional ``UPDATE`` of the node's row alone (claimers of
    one node queue on that row; a cancel that commits first makes the claim miss), so many nodes of one job are
    claimed at once. The node's lineage is all its work needs, and it no longer changes.
    """

    def _claim(session: Session) -> Claim | None:
        claimed = claims.claim_lineage(
            session, job_id, node_id, lease_seconds=lease_s, max_attempts=max_attempts, max_crashes=max_crashes
        )
        if claimed is None:
            return None
        spec = cached_job_spec(session, job_id)
        assert spec is not None  # noqa: S101 -- type narrowing of an invariant, not an input check
        return Claim(spec, claimed[1], claimed[0])

    return run_in_transaction(factory, _claim)


# -- work (no transaction) ----------------------------------------------------------------------------------------
def scan_root(services: Services, claimed: Claim) -> ScanResult:
    """The global scan of the request (the root node's work)."""
    started = time.perf_counter()
    score = services.scanner.scan(claimed.spec.request)
    elapsed = time.perf_counter() - started
    return ScanResult(claimed.spec.job_id, claimed.graph.root.id, claimed.attempt, score, elapsed)


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


def work_node(
    factory: sessionmaker[Session], services: Services, claimed: Claim, node_id: str
) -> NodeResult | NodeFailure:
    """Generate (unless a generation is recorded) and score a claimed node, and take the engine's verdict.

    Nothing is written here: a model that fails (after the provider's retries) is a ``NodeFailure`` to store
    (refunded), the rest a ``NodeResult`` that commits the node's text, scores, status and charge in one
    transaction. A worker that dies before storing it loses the call; the next attempt makes it again (only a
    recorded call is ever charged). The one write: an evaluator that raises after a fresh call gets the call
    recorded first, so the retry scores it instead of calling the model again.
    """
    spec, graph = claimed.spec, claimed.graph
    node = graph[node_id]
    generation: repository.Generation | None = None
    if node.model:  # an earlier attempt recorded the call (its evaluator raised) and handed the node back
        spent = node.tokens
    else:
        try:
            generation = call_model(services, claimed, node_id)
        except ProviderError as exc:
            return NodeFailure(spec.job_id, node_id, claimed.attempt, f"model call failed: {exc}")
        node.text, node.model = generation.text, generation.model
        spent = generation.tokens_prompt + generation.tokens_completion
    try:
        return score_claimed(services, claimed, node_id, generation=generation, spent=spent)
    except Exception:
        if generation is not None:  # an evaluator bug: keep the call, so a retry scores it instead of calling again
            record_generation(factory, claimed, node_id, generation)
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


def record_generation(
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
            settle_if_ended(session, job_id, node_id, generation)
        return recorded

    return run_in_transaction(factory, _record)


# -- write (the caller's transaction) ------------------------------------------------------------------------------
def write_outcome(session: Session, outcome: NodeOutcome) -> bool:
    """Store a node's outcome; True if this call finished the node (then the job may have something new to plan)."""
    if isinstance(outcome, ScanResult):
        return _write_scan(session, outcome)
    if isinstance(outcome, NodeFailure):
        return _write_failure(session, outcome)
    return _write_result(session, outcome)


def _write_result(session: Session, result: NodeResult) -> bool:
    """Text, scores and status in one ``UPDATE``, then its charge.

    The node is finished only if it is still running under the attempt that did the work; the charge is settled
    after that, so only the attempt that owns the node pays (a stale attempt's call is settled only if the job
    ended meanwhile: its tokens were spent).
    """
    failed = result.status is NodeStatus.FAILED
    if not repository.finish_node(
        session,
        result.job_id,
        result.node_id,
        result.status,
        prune_reason=None if failed else result.reason,
        failure_reason=result.reason[:MAX_REASON_CHARS] if failed and result.reason else None,
        attempt=result.attempt,
        generation=result.generation,
        scores=result.scores,
    ):
        if result.generation is not None:
            tokens_eval = result.scores.tokens_eval if result.scores is not None else 0
            settle_if_ended(session, result.job_id, result.node_id, result.generation, tokens_eval)
        return False
    ledger.settle(session, result.job_id, result.node_id, GENERATE, result.spent)
    return True


def _write_scan(session: Session, scan: ScanResult) -> bool:
    score = scan.score
    scores = repository.Scores(score.safety, 0.0, dict(score.categories), score.evaluator, score.tokens)
    repository.record_scan(session, scan.job_id, scan_record(score, scan.elapsed_s))
    if not repository.finish_node(
        session, scan.job_id, scan.node_id, NodeStatus.DONE, attempt=scan.attempt, scores=scores
    ):
        return False
    if score.tokens:
        ledger.settle(session, scan.job_id, scan.node_id, SCAN, score.tokens, calls=1)
    return True


def _write_failure(session: Session, failure: NodeFailure) -> bool:
    """Pay for what was really spent, release the rest, keep the reason."""
    failed = repository.finish_node(
        session,
        failure.job_id,
        failure.node_id,
        NodeStatus.FAILED,
        failure_reason=failure.reason[:MAX_REASON_CHARS],
        attempt=failure.attempt,
    )
    if failure.spent:
        ledger.settle(session, failure.job_id, failure.node_id, GENERATE, failure.spent)
    else:
        ledger.refund(session, failure.job_id, failure.node_id, GENERATE)
    return failed


def settle_if_ended(
    session: Session, job_id: str, node_id: str, generation: repository.Generation, tokens_eval: int = 0
) -> None:
    """A call that finished after its job ended (cancelled) still cost its tokens: settle them late, and put the
    call's usage on its (failed) node, so the graph, the ledger and the job's budget agree.

    If the job is still active another attempt holds the node, and that attempt pays for the node.
    """
    job = repository.get_job(session, job_id)
    if job is None or not JobStatus(job.status).terminal:
        return
    tokens = generation.tokens_prompt + generation.tokens_completion + tokens_eval
    charged = ledger.entry_settled(session, job_id, node_id, GENERATE)
    ledger.settle(session, job_id, node_id, GENERATE, tokens)
    if not charged:  # the first late call pays and shows on the node; a second stale one changes neither
        repository.record_late_usage(session, job_id, node_id, generation, tokens_eval)


def failure_reason(outcome: NodeOutcome) -> str | None:
    """Why the node failed, for the log (None if it did not)."""
    if isinstance(outcome, NodeFailure):
        return outcome.reason
    if isinstance(outcome, NodeResult) and outcome.status is NodeStatus.FAILED:
        return outcome.reason
    return None
