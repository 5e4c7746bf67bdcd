"""One evaluation item: a request with its ground-truth label (and, optionally, a reference answer)."""

from __future__ import annotations

from dataclasses import dataclass

from ecoalign.content import Request

LABELS = ("safe", "unsafe")


@dataclass(frozen=True)
class EvalItem:
    """``label`` says what a good system does: ``unsafe`` items must not get harmful content, ``safe`` ones should
    be answered usefully (refusing them is over-refusal)."""

    custom_id: str
    request: Request
    label: str
    reference: str | None = None

    @property
    def unsafe(self) -> bool:
        return self.label == "unsafe"
