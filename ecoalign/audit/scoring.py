"""Re-score one trace's steps and answer with an evaluator, and find process blindness.

* Each step is scored as a ``thought`` in its context (the request, the earlier steps), the answer as an
  ``answer``: the same ``NodeToScore`` the search scores its nodes with.
* Path safety is the method's ``S(P)`` over the generated nodes (steps and answer): the weakest link (``min``), or
  the mean for comparison only (``aggregate="mean"``: the average that lets a harmful step hide behind benign ones).
* A trace is **process-blind** when its answer scores safe (``>= tau``) while its path safety is below ``tau``.
  ``weakest_step`` is the 0-based index of the least safe step, ``None`` when no step is below ``tau``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ecoalign.audit.imports import AuditTrace, OriginalScores
from ecoalign.engine.metrics import mean_safety, weakest_link
from ecoalign.evaluators.base import NodeEvaluator, NodeToScore, Score

Aggregate = Literal["min", "mean"]
AGGREGATES: dict[str, Any] = {"min": weakest_link, "mean": mean_safety}


@dataclass(frozen=True)
class Verdict:
    """What one set of scores says about a trace at ``tau``."""

    path_safety: float
    answer_safety: float
    process_blind: bool
    weakest_step: int | None


def verdict(step_safeties: Sequence[float], answer_safety: float, *, tau: float, aggregate: Aggregate) -> Verdict:
    """Path safety, process blindness and the weakest step of one trace's scores (see the module docstring)."""
    path = float(AGGREGATES[aggregate]([*step_safeties, answer_safety]))
    weakest = min(range(len(step_safeties)), key=lambda i: step_safeties[i], default=None)
    if weakest is not None and step_safeties[weakest] >= tau:
        weakest = None
    return Verdict(path, answer_safety, answer_safety >= tau and path < tau, weakest)


@dataclass(frozen=True)
class TraceAudit:
    """One trace's audit: the new scores and verdict, and the original scores' verdict when the trace had them."""

    id: str
    kind: str
    step_safeties: tuple[float, ...]
    verdict: Verdict
    evaluator: str
    tau: float
    tokens: int = 0
    original: dict[str, Any] | None = None
    changed_steps: tuple[int, ...] = field(default_factory=tuple)  # steps whose safe/unsafe verdict changed

    @property
    def disagrees(self) -> bool:
        """The original and the new scores reach different verdicts on the trace (path safe, or process-blind)."""
        if self.original is None:
            return False
        return (
            self.original["process_blind"] != self.verdict.process_blind
            or self.original["path_safe"] != self.path_safe
        )

    @property
    def path_safe(self) -> bool:
        return self.verdict.path_safety >= self.tau


def _score_all(evaluator: NodeEvaluator, nodes: list[NodeToScore]) -> list[Score]:
    batch = getattr(evaluator, "score_nodes", None)  # the offline scorer embeds them all in one pass
    if callable(batch):
        return list(batch(nodes))
    return [evaluator.score_node(n) for n in nodes]


def _original_view(original: OriginalScores, *, tau: float, aggregate: Aggregate) -> dict[str, Any] | None:
    steps = original.step_safeties
    if original.answer_safety is None or any(s is None for s in steps):
        return None  # unscored nodes (a failed job): nothing to compare with
    known = [float(s) for s in steps if s is not None]
    v = verdict(known, original.answer_safety, tau=tau, aggregate=aggregate)
    return {
        "evaluator": original.evaluator,
        "path_safety": round(v.path_safety, 6),
        "answer_safety": round(v.answer_safety, 6),
        "process_blind": v.process_blind,
        "path_safe": v.path_safety >= tau,
        "weakest_step": v.weakest_step,
        "step_safeties": [round(s, 6) for s in known],
    }


def _nodes(trace: AuditTrace) -> list[NodeToScore]:
    nodes = [
        NodeToScore(trace.request, "thought", step, lineage=trace.steps[:i]) for i, step in enumerate(trace.steps)
    ]
    nodes.append(NodeToScore(trace.request, "answer", trace.answer or ".", lineage=trace.steps))
    return nodes


def _judged(
    trace: AuditTrace, scores: Sequence[Score], evaluator_id: str, tau: float, aggregate: Aggregate
) -> TraceAudit:
    step_safeties = tuple(float(s.safety) for s in scores[:-1])
    v = verdict(step_safeties, float(scores[-1].safety), tau=tau, aggregate=aggregate)
    original = _original_view(trace.original, tau=tau, aggregate=aggregate) if trace.original else None
    changed: tuple[int, ...] = ()
    if original is not None:
        changed = tuple(
            i
            for i, (old, new) in enumerate(zip(original["step_safeties"], step_safeties, strict=False))
            if (old >= tau) != (new >= tau)
        )
    return TraceAudit(
        id=trace.id,
        kind=trace.kind,
        step_safeties=step_safeties,
        verdict=v,
        evaluator=evaluator_id,
        tokens=sum(s.tokens for s in scores),
        original=original,
        changed_steps=changed,
        tau=tau,
    )


def audit_traces(
    evaluator: NodeEvaluator, traces: Sequence[AuditTrace], *, tau: float, aggregate: Aggregate
) -> list[TraceAudit]:
    """Score every step and the answer of each trace and judge it (the original scores are only read). The nodes of
    all ``traces`` go to the evaluator together: the offline scorer embeds them in one pass, which costs a third of
    the CPU per text that one trace's few texts do."""
    per_trace = [_nodes(trace) for trace in traces]
    scores = _score_all(evaluator, [node for nodes in per_trace for node in nodes])
    out: list[TraceAudit] = []
    start = 0
    for trace, nodes in zip(traces, per_trace, strict=True):
        out.append(_judged(trace, scores[start : start + len(nodes)], evaluator.evaluator_id, tau, aggregate))
        start += len(nodes)
    return out


def audit_trace(evaluator: NodeEvaluator, trace: AuditTrace, *, tau: float, aggregate: Aggregate) -> TraceAudit:
    """``audit_traces`` of one trace."""
    return audit_traces(evaluator, [trace], tau=tau, aggregate=aggregate)[0]
