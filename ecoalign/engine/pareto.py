"""The Pareto tracker: complete paths that no other complete path beats on all of S↑, U↑, C↓."""

from __future__ import annotations

from collections.abc import Iterable

from ecoalign.engine.metrics import PathMetrics


def dominates(a: PathMetrics, b: PathMetrics) -> bool:
    """a is at least as good as b on S, U and C, and strictly better on one."""
    at_least = a.safety >= b.safety and a.utility >= b.utility and a.cost <= b.cost
    strictly = a.safety > b.safety or a.utility > b.utility or a.cost < b.cost
    return at_least and strictly


def pareto_front(paths: Iterable[PathMetrics]) -> list[PathMetrics]:
    """The non-dominated subset, in input order. O(n²), fine for graphs of tens to hundreds of nodes."""
    candidates = list(paths)
    return [p for p in candidates if not any(dominates(q, p) for q in candidates if q is not p)]


class ParetoTracker:
    """Keeps the frontier up to date as complete paths arrive."""

    def __init__(self) -> None:
        self._front: list[PathMetrics] = []

    def offer(self, path: PathMetrics) -> bool:
        """Add a complete path; returns whether it joined the frontier."""
        if any(dominates(q, path) for q in self._front):
            return False
        self._front = [q for q in self._front if not dominates(path, q)] + [path]
        return True

    @property
    def front(self) -> list[PathMetrics]:
        return list(self._front)
