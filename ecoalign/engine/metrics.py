"""Path metrics: S (safety), U (utility), C (cost) of the path to a node.

The path to a node is its lineage (the node and all its ancestors). The request itself (the root) is judged
by the scanner, not counted as a reasoning step, so path safety is taken over the generated nodes only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ecoalign.engine.graph import Node, NodeKind, ThoughtGraph

SafetyAggregate = Callable[[Sequence[float]], float]


def weakest_link(safeties: Sequence[float]) -> float:
    """S(P) = min over steps: one harmful step makes the whole path harmful."""
    return min(safeties) if safeties else 1.0


def mean_safety(safeties: Sequence[float]) -> float:
    """The process-blind average the method argues against (kept for baselines and ablations)."""
    return sum(safeties) / len(safeties) if safeties else 1.0


@dataclass(frozen=True)
class PathMetrics:
    node_id: str
    path: tuple[str, ...]  # node ids, root first
    safety: float  # S(P)
    utility: float  # U(P): utility of the last node
    cost: int  # C(P): tokens over the path

    def net_value(self, cost_weight: float) -> float:
        """U − λ·C/1000, the selection criterion among safe Pareto paths."""
        return self.utility - cost_weight * self.cost / 1000.0


def scored_steps(lineage: Sequence[Node]) -> list[Node]:
    """The generated, scored nodes of a lineage (the root is the request, not a step)."""
    return [n for n in lineage if n.kind is not NodeKind.ROOT and n.safety is not None]


def step_safeties(lineage: Sequence[Node]) -> list[float]:
    """s(v) of the scored steps of a lineage, in path order (what a ``SafetyAggregate`` takes)."""
    root = NodeKind.ROOT  # bound once: an Enum member looked up on its class is slow on Python 3.11
    return [n.safety for n in lineage if n.kind is not root and n.safety is not None]


def path_safety(graph: ThoughtGraph, node_id: str, aggregate: SafetyAggregate = weakest_link) -> float:
    """S(P) alone: what verdicts and the safety gate need, without building the whole ``PathMetrics``."""
    return aggregate(step_safeties(graph.lineage(node_id)))


def path_metrics(graph: ThoughtGraph, node_id: str, aggregate: SafetyAggregate = weakest_link) -> PathMetrics:
    lineage = graph.lineage(node_id)
    last = lineage[-1]
    return PathMetrics(
        node_id=node_id,
        path=graph.lineage_ids(node_id),
        safety=aggregate(step_safeties(lineage)),
        utility=last.utility if last.utility is not None else 0.0,
        cost=sum(n.tokens for n in lineage),
    )
