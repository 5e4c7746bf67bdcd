"""The thought graph: a DAG of reasoning steps grown from one request.

Pure data and queries: no I/O. A node may have several parents (a thought merging two lines of reasoning), so
the "path to a node" is its whole *lineage*: the node plus every ancestor, in topological order. On a tree this
is exactly the root-to-node path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, KeysView
from dataclasses import dataclass, field
from enum import StrEnum


class NodeKind(StrEnum):
    ROOT = "root"
    THOUGHT = "thought"
    ANSWER = "answer"
    REFUSAL = "refusal"


class NodeStatus(StrEnum):
    PENDING = "pending"  # planned, budget reserved, not started
    RUNNING = "running"  # a worker is generating or scoring it
    DONE = "done"  # generated and scored
    PRUNED = "pruned"  # scored, but its path safety is below the threshold (kept for the trace)
    FAILED = "failed"  # generation or scoring failed for good

    @property
    def in_flight(self) -> bool:
        return self in _IN_FLIGHT

    @property
    def settled(self) -> bool:
        return self in _SETTLED


# Module constants rather than ``NodeStatus.X`` inside the properties: on Python 3.11 an Enum member looked up on
# its class costs several times a global read, and the engine asks every node of a graph on every step.
_IN_FLIGHT = frozenset({NodeStatus.PENDING, NodeStatus.RUNNING})
_SETTLED = frozenset({NodeStatus.DONE, NodeStatus.PRUNED, NodeStatus.FAILED})


TERMINAL_KINDS = frozenset({NodeKind.ANSWER, NodeKind.REFUSAL})


@dataclass
class Node:
    """One step of the graph. Scores are ``None`` until the node is scored."""

    id: str
    kind: NodeKind
    parents: tuple[str, ...] = ()
    depth: int = 0
    status: NodeStatus = NodeStatus.PENDING
    ordinal: int = 0  # position among siblings created by the same action
    text: str = ""
    safety: float | None = None
    utility: float | None = None
    categories: dict[str, float] = field(default_factory=dict)
    tokens: int = 0  # c(v): tokens spent to generate and to score this node
    est_tokens: int = 0  # tokens reserved for it before the call
    model: str = ""
    evaluator: str = ""
    prune_reason: str | None = None
    failure_reason: str | None = None
    reason: str | None = None  # why the search planned it (kept for refusals: the cause of the refusal)

    @property
    def is_terminal(self) -> bool:
        return self.kind in TERMINAL_KINDS


def node_id(job_id: str, kind: NodeKind | str, parents: Iterable[str], ordinal: int = 0) -> str:
    """Deterministic node id: the same action planned twice (a redelivered task) yields the same id."""
    key = "|".join([job_id, str(kind), ",".join(sorted(parents)), str(ordinal)])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]


class GraphError(ValueError):
    """An operation would break the DAG (unknown parent, duplicate id, a root with parents)."""


class ThoughtGraph:
    """A DAG of ``Node``s keyed by id. Acyclic by construction: parents must exist before their children."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self._nodes: dict[str, Node] = {}
        self._children: dict[str, list[str]] = {}
        self._order: list[str] = []  # insertion order, which is a topological order
        self._position: dict[str, int] = {}
        self._lineages: dict[str, tuple[str, ...]] = {}  # a node's lineage never changes once it is added

    # -- building -------------------------------------------------------------------------------------------
    def add(self, node: Node) -> Node:
        if node.id in self._nodes:
            raise GraphError(f"duplicate node id {node.id}")
        if node.kind is NodeKind.ROOT:
            if node.parents:
                raise GraphError("the root has no parents")
            if self.root_id is not None:
                raise GraphError("the graph already has a root")
        elif not node.parents:
            raise GraphError(f"{node.kind} node {node.id} needs at least one parent")
        for parent in node.parents:
            if parent not in self._nodes:
                raise GraphError(f"unknown parent {parent} for node {node.id}")
            if self._nodes[parent].is_terminal:
                raise GraphError(f"terminal node {parent} cannot have children")
        self._nodes[node.id] = node
        self._children[node.id] = []
        for parent in node.parents:
            self._children[parent].append(node.id)
        self._position[node.id] = len(self._order)
        self._order.append(node.id)
        return node

    def replace(self, node: Node) -> Node:
        """Put a newer state of a node already in the graph (same id and parents) in place of the old one.

        Why: a graph kept up to date from stored changes (``store.reads.GraphCache``) refreshes the nodes that
        changed instead of rebuilding everything; the structure, its order and the lineages stay as they are.
        """
        old = self._nodes.get(node.id)
        if old is None:
            raise GraphError(f"unknown node {node.id}")
        if node.parents != old.parents or node.kind is not old.kind:
            raise GraphError(f"node {node.id} changed its kind or parents")
        self._nodes[node.id] = node
        return node

    def add_root(self, text: str) -> Node:
        return self.add(
            Node(id=node_id(self.job_id, NodeKind.ROOT, ()), kind=NodeKind.ROOT, text=text, status=NodeStatus.PENDING)
        )

    # -- queries --------------------------------------------------------------------------------------------
    def __contains__(self, node_id_: str) -> bool:
        return node_id_ in self._nodes

    def __getitem__(self, node_id_: str) -> Node:
        return self._nodes[node_id_]

    def __len__(self) -> int:
        return len(self._nodes)

    def ids(self) -> KeysView[str]:
        """The ids of every node (a live view)."""
        return self._nodes.keys()

    def __iter__(self) -> Iterator[Node]:
        """Nodes in insertion order: ``_nodes`` is filled in the same order as ``_order`` and never shrinks."""
        return iter(self._nodes.values())

    @property
    def root_id(self) -> str | None:
        return self._order[0] if self._order and self._nodes[self._order[0]].kind is NodeKind.ROOT else None

    @property
    def root(self) -> Node:
        if self.root_id is None:
            raise GraphError("graph has no root")
        return self._nodes[self.root_id]

    def children(self, node_id_: str) -> list[Node]:
        return [self._nodes[c] for c in self._children[node_id_]]

    def edges(self) -> list[tuple[str, str]]:
        return [(p, n.id) for n in self for p in n.parents]

    def lineage(self, node_id_: str) -> list[Node]:
        """The node and all its ancestors, root first, in topological order (the "path" to the node)."""
        return list(map(self._nodes.__getitem__, self.lineage_ids(node_id_)))

    def lineage_ids(self, node_id_: str) -> tuple[str, ...]:
        """The ids of ``lineage(node_id_)``.

        Remembered per node: the engine asks for the same lineages many times per step, and adding nodes never
        changes the lineage of a node already in the graph.
        """
        ids = self._lineages.get(node_id_)
        if ids is None:
            seen: set[str] = set()
            stack = [node_id_]
            while stack:
                current = stack.pop()
                if current in seen:
                    continue
                seen.add(current)
                stack.extend(self._nodes[current].parents)
            ids = self._lineages[node_id_] = tuple(sorted(seen, key=self._position.__getitem__))
        return ids

    def in_flight(self) -> list[Node]:
        return [n for n in self._nodes.values() if n.status.in_flight]

    def terminals(self) -> list[Node]:
        return [n for n in self._nodes.values() if n.is_terminal]

    def tokens_spent(self) -> int:
        return sum(n.tokens for n in self._nodes.values())
