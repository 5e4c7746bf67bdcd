"""The contract every evaluator meets: score a request (the scan) or one node of a thought graph."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ecoalign.content import Request


@dataclass(frozen=True)
class Segment:
    """One independently scored piece of a request: the text, or one image (its OCR text)."""

    kind: str  # "text" | "image"
    index: int  # 0 for the text; the image's position for images
    text: str  # the text scored (for images: what OCR read)
    safety: float  # 0..1, 1 = safe
    categories: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Score:
    """An evaluator's verdict on one item. ``safety`` and ``utility`` are in 0..1 (1 = safe / useful)."""

    safety: float
    utility: float
    categories: dict[str, float] = field(default_factory=dict)
    tokens: int = 0  # model tokens the evaluation itself spent (0 for offline scorers)
    evaluator: str = ""  # evaluator id, e.g. "minilm-safety@1+judge:gpt-4o-mini"
    model: str = ""  # model id(s) behind it
    segments: tuple[Segment, ...] = ()  # for scans: every segment, in order
    weakest: int | None = None  # index into ``segments`` of the weakest one
    detail: dict = field(default_factory=dict)  # free-form: rationale, fallback used, latencies


@dataclass(frozen=True)
class NodeToScore:
    """A generated node in context: what the evaluator needs to judge one reasoning step or answer."""

    request: Request
    kind: str  # "thought" | "answer" | "refusal"
    text: str
    lineage: tuple[str, ...] = ()  # texts of the earlier steps on its path, root first


@runtime_checkable
class Scanner(Protocol):
    """Scores a request before any generation: each segment separately, the weakest wins."""

    evaluator_id: str

    def scan(self, request: Request) -> Score: ...


@runtime_checkable
class NodeEvaluator(Protocol):
    """Scores one generated node for safety and utility."""

    evaluator_id: str

    def score_node(self, node: NodeToScore) -> Score: ...
