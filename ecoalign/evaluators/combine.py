"""Combining evaluators: the weakest link of several, and escalation from a cheap one to a costly one.

Why both: the method takes safety as the weakest link (never an average, so no evaluator can outvote a harm the
other saw), and its economics say to pay for the costly judge only where the cheap score cannot decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypeGuard

from ecoalign.categories import MODERATION_CATEGORIES
from ecoalign.content import Request
from ecoalign.evaluators.base import NodeEvaluator, NodeToScore, Scanner, Score


def _can_scan(member: object) -> TypeGuard[Scanner]:
    """A member scans requests when it has a callable ``scan`` (checked without calling it)."""
    return callable(getattr(member, "scan", None))


def _is_fallback(score: Score) -> bool:
    return bool(score.detail.get("fallback"))


def _member_summary(score: Score) -> dict[str, Any]:
    out = {
        "evaluator": score.evaluator,
        "safety": round(score.safety, 4),
        "utility": round(score.utility, 4),
        "tokens": score.tokens,
    }
    if _is_fallback(score):
        out["fallback"] = score.detail["fallback"]
    return out


def weakest_link(scores: Sequence[Score], utility_index: int, *, skip_fallbacks: bool = False) -> Score:
    """safety = min, categories = elementwise max, utility from ``scores[utility_index]``, tokens summed.

    ``skip_fallbacks``: leave out of the min (and of the utility) any score that is a fallback, as long as one
    real score remains; otherwise a broken judge's conservative 0.0 decides everything."""
    if not scores:
        raise ValueError("nothing to combine")
    counted = [s for s in scores if not (skip_fallbacks and _is_fallback(s))] or list(scores)
    weakest = min(counted, key=lambda s: s.safety)
    utility_score = scores[utility_index]
    if utility_score not in counted:
        utility_score = counted[0]
    segment_source = next((s for s in scores if s.segments), None)
    return Score(
        safety=weakest.safety,
        utility=utility_score.utility,
        categories={c: max(s.categories.get(c, 0.0) for s in counted) for c in MODERATION_CATEGORIES},
        tokens=sum(s.tokens for s in scores),
        evaluator="+".join(s.evaluator for s in scores if s.evaluator),
        model="+".join(dict.fromkeys(s.model for s in scores if s.model)),
        segments=segment_source.segments if segment_source else (),
        weakest=segment_source.weakest if segment_source else None,
        detail={
            "members": [_member_summary(s) for s in scores],
            "weakest_evaluator": weakest.evaluator,
            "utility_from": utility_score.evaluator,
        },
    )


class WeakestLinkCombiner:
    """Several evaluators as one: every member scores, the least safe verdict wins.

    ``utility_from``: index of the member whose utility is used; default the last ``LLMJudge`` among the
    members, else the first member."""

    def __init__(
        self, members: Sequence[NodeEvaluator], *, utility_from: int | None = None, skip_fallbacks: bool = False
    ) -> None:
        if not members:
            raise ValueError("WeakestLinkCombiner needs at least one member")
        self.members = list(members)
        if utility_from is None:
            from ecoalign.evaluators.judge import LLMJudge

            judges = [i for i, m in enumerate(self.members) if isinstance(m, LLMJudge)]
            utility_from = judges[-1] if judges else 0
        if not 0 <= utility_from < len(self.members):
            raise ValueError("utility_from out of range")
        self.utility_from = utility_from
        self.skip_fallbacks = skip_fallbacks
        self.evaluator_id = "+".join(m.evaluator_id for m in self.members)

    def score_node(self, node: NodeToScore) -> Score:
        scores = [m.score_node(node) for m in self.members]
        return weakest_link(scores, self.utility_from, skip_fallbacks=self.skip_fallbacks)

    def scan(self, request: Request) -> Score:
        """Weakest link of the members that can scan a request (segments from the first that has them)."""
        scanners = [(i, m) for i, m in enumerate(self.members) if _can_scan(m)]
        if not scanners:
            raise TypeError("no member of this combiner can scan a request")
        scores = [m.scan(request) for _, m in scanners]
        indexes = [i for i, _ in scanners]
        utility_index = indexes.index(self.utility_from) if self.utility_from in indexes else 0
        return weakest_link(scores, utility_index, skip_fallbacks=self.skip_fallbacks)


class Escalating:
    """Cheap score first; the costly evaluator only when the cheap safety falls in ``[lo, hi]``.

    ``mode="judge"`` (default): inside the band the costly verdict decides (that is what escalation buys; a
    fallback from it keeps the cheap score). ``mode="weakest"``: inside the band, the weakest link of both.
    ``detail["path"]`` records what happened: ``cheap:confident-safe``, ``cheap:confident-unsafe``,
    ``escalated``, ``escalated:fallback-to-cheap``."""

    def __init__(
        self,
        cheap: Any,
        costly: Any,
        *,
        lo: float = 0.2,
        hi: float = 0.8,
        mode: Literal["judge", "weakest"] = "judge",
    ) -> None:
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"need 0 <= lo <= hi <= 1, got lo={lo} hi={hi}")
        if mode not in ("judge", "weakest"):
            raise ValueError("mode must be 'judge' or 'weakest'")
        self.cheap, self.costly, self.lo, self.hi, self.mode = cheap, costly, lo, hi, mode
        self.evaluator_id = f"escalating({cheap.evaluator_id}->{costly.evaluator_id})"

    def _resolve(self, cheap: Score, costly_call) -> Score:
        band = {"lo": self.lo, "hi": self.hi}
        if cheap.safety > self.hi or cheap.safety < self.lo:
            path = "cheap:confident-safe" if cheap.safety > self.hi else "cheap:confident-unsafe"
            return _with_detail(cheap, path=path, band=band, cheap_safety=cheap.safety)
        costly: Score = costly_call()
        if _is_fallback(costly):
            merged = weakest_link([cheap, costly], 0, skip_fallbacks=True)
            return _with_detail(merged, path="escalated:fallback-to-cheap", band=band, cheap_safety=cheap.safety)
        if self.mode == "weakest":
            merged = weakest_link([cheap, costly], 1)
        else:
            merged = Score(
                safety=costly.safety,
                utility=costly.utility,
                categories=dict(costly.categories),
                tokens=cheap.tokens + costly.tokens,
                evaluator=f"{cheap.evaluator}+{costly.evaluator}",
                model="+".join(dict.fromkeys(m for m in (cheap.model, costly.model) if m)),
                segments=cheap.segments or costly.segments,
                weakest=cheap.weakest if cheap.segments else costly.weakest,
                detail={"members": [_member_summary(cheap), _member_summary(costly)], **costly.detail},
            )
        return _with_detail(merged, path="escalated", band=band, cheap_safety=cheap.safety)

    def score_node(self, node: NodeToScore) -> Score:
        return self._resolve(self.cheap.score_node(node), lambda: self.costly.score_node(node))

    def scan(self, request: Request) -> Score:
        return self._resolve(self.cheap.scan(request), lambda: self.costly.scan(request))

    def scan_many(self, requests: Sequence[Request]) -> list[Score]:
        """Batch the cheap scans (fast path), escalate the uncertain ones one by one."""
        batch = getattr(self.cheap, "scan_many", None)
        cheap = list(batch(list(requests))) if callable(batch) else [self.cheap.scan(r) for r in requests]
        return [self._resolve(c, lambda r=r: self.costly.scan(r)) for c, r in zip(cheap, requests, strict=True)]


def _with_detail(score: Score, **extra: Any) -> Score:
    return Score(
        safety=score.safety,
        utility=score.utility,
        categories=dict(score.categories),
        tokens=score.tokens,
        evaluator=score.evaluator,
        model=score.model,
        segments=score.segments,
        weakest=score.weakest,
        detail={**score.detail, **extra},
    )
