"""One moderation result in OpenAI's shape plus the ``ecoalign`` extension, and how its fields are derived from a
scan (and a judge's verdict): category scores, the flagged categories, the input types that carried them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ecoalign.categories import MODERATION_CATEGORIES, empty_scores
from ecoalign.content import Request
from ecoalign.evaluators.base import Score, Segment
from ecoalign.moderation.policy import ACTIONS, ModerationPolicy


@dataclass
class ModerationResult:
    """One OpenAI moderation result plus the ``ecoalign`` extension; ``trace`` is stored, never returned."""

    flagged: bool
    categories: dict[str, bool]
    category_scores: dict[str, float]
    category_applied_input_types: dict[str, list[str]]
    ecoalign: dict[str, Any]
    trace: dict[str, Any]

    @property
    def tokens(self) -> int:
        return int(self.ecoalign["tokens"])

    @property
    def trace_id(self) -> str:
        return str(self.ecoalign["trace_id"])

    @property
    def decision(self) -> str:
        return str(self.ecoalign["decision"])

    def to_openai(self) -> dict[str, Any]:
        """The result object of a ``/v1/moderations`` response, ``ecoalign`` included."""
        return {
            "flagged": self.flagged,
            "categories": self.categories,
            "category_scores": self.category_scores,
            "category_applied_input_types": self.category_applied_input_types,
            "ecoalign": self.ecoalign,
        }


def moderation_response(results: Sequence[ModerationResult], model: str, response_id: str | None = None) -> dict:
    """A ``/v1/moderations`` response body: ``{id, model, results}``."""
    return {
        "id": response_id or f"modr-{uuid.uuid4().hex}",
        "model": model,
        "results": [r.to_openai() for r in results],
    }


def scan_category_scores(scan: Score) -> dict[str, float]:
    """Per OpenAI key, the highest score any segment gave (the scan's own ``categories`` as a floor)."""
    scores = empty_scores()
    for source in [scan.categories, *(s.categories for s in scan.segments)]:
        for key, value in source.items():
            if key in scores:
                scores[key] = max(scores[key], min(1.0, max(0.0, float(value))))
    return scores


def flagged_categories(flagged: bool, scores: dict[str, float], threshold: float) -> dict[str, bool]:
    """OpenAI semantics: ``flagged`` iff some category is true. A flagged item marks every category at or over
    the threshold, or its strongest one if none is."""
    if not flagged:
        return dict.fromkeys(MODERATION_CATEGORIES, False)
    marked = {k: scores[k] >= threshold for k in MODERATION_CATEGORIES}
    if not any(marked.values()):
        marked[max(MODERATION_CATEGORIES, key=lambda k: scores[k])] = True
    return marked


def policy_categories(
    flagged: bool, scores: dict[str, float], custom: dict[str, float], policy: ModerationPolicy
) -> dict[str, bool]:
    """The categories a flagged item is flagged for under ``policy``, OpenAI keys then custom ones: each category
    in force at or over its threshold; if none is, the strongest category overall when it is in force. An item
    whose harm lies only in categories out of force is flagged for none (and so not flagged at all)."""
    every = {**scores, **custom}
    marked = dict.fromkeys(every, False)
    if not flagged:
        return marked
    in_force = policy.in_force
    for key in in_force:
        marked[key] = every.get(key, 0.0) >= policy.threshold(key)
    if not any(marked.values()) and every:
        strongest = max(every, key=lambda k: every[k])
        if strongest in in_force:
            marked[strongest] = True
    return marked


def item_action(marked: dict[str, bool], policy: ModerationPolicy) -> tuple[str, dict[str, str]]:
    """The item's action (the strongest of its flagged categories', ``none`` if none) and each one's action."""
    actions = {k: policy.action(k) for k, on in marked.items() if on}
    if not actions:
        return "none", actions
    return max(actions.values(), key=ACTIONS.index), actions


def _present_kinds(request: Request, segments: Sequence[Segment]) -> list[Segment]:
    """The segments that stand for real input: an empty text next to images is not a text input."""
    return [s for s in segments if not (s.kind == "text" and not request.text.strip() and request.images)]


def applied_input_types(
    request: Request, scan: Score, scores: dict[str, float], *, judged: bool
) -> dict[str, list[str]]:
    """Per key, the input types that carried the score: the segments giving at least half of it (and at least
    0.01). A judge saw every input, so after a judge it is every input type present, for each scored key."""
    segments = _present_kinds(request, scan.segments)
    present = sorted({s.kind for s in segments}) or (["image"] if request.images else ["text"])
    out: dict[str, list[str]] = {}
    for key in MODERATION_CATEGORIES:
        final = scores[key]
        if final < 0.01:
            out[key] = []
        elif judged:
            out[key] = present
        else:
            kinds = {s.kind for s in segments if s.categories.get(key, 0.0) >= max(0.01, final / 2)}
            out[key] = sorted(kinds)
    return out


def weakest_segment(scan: Score, excerpt_chars: int) -> dict[str, Any] | None:
    """The segment that decided the scan (the least safe), with a whitespace-folded excerpt."""
    if not scan.segments:
        return None
    index = (
        scan.weakest
        if scan.weakest is not None
        else min(range(len(scan.segments)), key=lambda i: scan.segments[i].safety)
    )
    seg = scan.segments[index]
    text = " ".join(seg.text.split())
    return {
        "kind": seg.kind,
        "index": seg.index,
        "excerpt": text[:excerpt_chars] + ("…" if len(text) > excerpt_chars else ""),
        "safety": round(seg.safety, 6),
    }
