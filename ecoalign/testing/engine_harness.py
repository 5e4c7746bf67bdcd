"""A pure, in-memory executor for engine tests and ``benchmarks/engine_decisions.py``: the same loop the runtime
runs, with test doubles for the model and the evaluator, and the in-memory ledger."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ecoalign.engine.graph import Node, NodeKind, NodeStatus, ThoughtGraph
from ecoalign.engine.policy import Policy
from ecoalign.engine.search import Outcome, Search, Step
from ecoalign.engine.strategies import ECOALIGN, Strategy
from ecoalign.testing.ledger import InMemoryLedger

# (node, graph) -> (text, tokens used)
ModelFn = Callable[[Node, ThoughtGraph], tuple[str, int]]
# (node, graph) -> (safety, utility)
ScoreFn = Callable[[Node, ThoughtGraph], tuple[float, float]]


@dataclass
class Run:
    graph: ThoughtGraph
    ledger: InMemoryLedger
    outcome: Outcome
    steps: list[Step] = field(default_factory=list)
    ledger_trace: list[tuple[int, int, int]] = field(default_factory=list)  # (total, spent, reserved) after each op

    def visited(self) -> set[tuple[str, tuple[str, ...], int]]:
        """Structural identity of the searched nodes (thoughts and answers): (kind, parents, ordinal)."""
        searched = (NodeKind.THOUGHT, NodeKind.ANSWER)
        return {(n.kind.value, n.parents, n.ordinal) for n in self.graph if n.kind in searched}


def fixed_tokens(tokens: int = 10) -> ModelFn:
    return lambda node, graph: (f"{node.kind.value}-{node.id[:6]}", tokens)


def run_search(
    policy: Policy,
    model: ModelFn,
    score: ScoreFn,
    *,
    strategy: Strategy = ECOALIGN,
    scan_safety: float = 0.7,
    request_text: str = "a request",
    job_id: str = "job-1",
    batch: int = 1,
    max_iterations: int = 10_000,
    allow_merge: bool | None = None,  # None: the policy's allow_merge
) -> Run:
    """Drive ``Search`` to its outcome. ``batch`` nodes are executed per round (simulates concurrency)."""
    graph = ThoughtGraph(job_id)
    root = graph.add_root(request_text)
    root.safety, root.utility, root.status = scan_safety, 0.0, NodeStatus.DONE
    ledger = InMemoryLedger(total=policy.budget)
    search = Search(policy, strategy, request_chars=len(request_text), allow_merge=allow_merge)
    run = Run(graph, ledger, outcome=None)  # type: ignore[arg-type]
    for _ in range(max_iterations):
        step = search.step(graph, ledger.view())
        run.steps.append(step)
        if step.outcome is not None:
            run.outcome = step.outcome
            return run
        for planned in step.new:
            node = graph.add(planned.as_node())
            if planned.prefilled_text is not None:
                node.text, node.safety, node.utility, node.status = planned.prefilled_text, 1.0, 0.0, NodeStatus.DONE
            elif not ledger.reserve(node.id, planned.est_tokens):
                node.status, node.failure_reason = NodeStatus.FAILED, "budget exhausted"
            run.ledger_trace.append((ledger.total, ledger.spent, ledger.reserved))
        pending = [n for n in graph if n.status is NodeStatus.PENDING]
        for node in pending[:batch] if step.waiting else []:
            text, tokens = model(node, graph)
            node.text = text
            node.tokens = ledger.settle(node.id, tokens)
            node.safety, node.utility = score(node, graph)
            node.status, node.prune_reason = search.verdict(graph, node.id)
            run.ledger_trace.append((ledger.total, ledger.spent, ledger.reserved))
    raise AssertionError("search did not finish")
