"""The moderator: scan, settle the clear items at zero tokens, escalate the uncertain ones within budget.

Why this shape: the cheap offline scan (each text and image segment scored, the weakest wins) settles the clear
items at zero model tokens; only the uncertain middle buys costlier evidence (the LLM judge). That is the
EcoAlign economy applied to moderation: tokens go where the scan cannot decide.

* ``safety >= policy.hi``  → not flagged, ``scan:confident-safe``, 0 tokens;
* ``safety <= policy.lo``  → flagged, ``scan:confident-unsafe``, 0 tokens;
* otherwise the item is uncertain. With a judge, it reserves its estimated cost from the per-item budget and from
  the shared ``RunBudget`` *before* the call and settles the real ``usage`` after; if either budget cannot cover
  it, or the judge fails, the scan decides alone (``safety < policy.tau`` → flagged) and ``ecoalign.decision``
  says why. Without a judge: ``scan:uncertain-no-judge``.

Every decision carries a trace (segments, scores, thresholds, budget state, judge prompt and output) that each
path stores in ``moderation_traces`` (``ecoalign.moderation.traces``).
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ecoalign.categories import MODERATION_CATEGORIES
from ecoalign.content import Image, Request
from ecoalign.evaluators.base import Scanner, Score
from ecoalign.moderation.budget import RunBudget
from ecoalign.moderation.decisions import (
    JUDGE,
    SCAN_ITEM_BUDGET,
    SCAN_JUDGE_FAILED,
    SCAN_NO_JUDGE,
    SCAN_RUN_BUDGET,
    SCAN_SAFE,
    SCAN_UNSAFE,
)
from ecoalign.moderation.judge import JudgeError, JudgeVerdict, ModerationJudge
from ecoalign.moderation.policy import ModerationPolicy
from ecoalign.moderation.result import (
    ModerationResult,
    applied_input_types,
    flagged_categories,
    scan_category_scores,
    weakest_segment,
)
from ecoalign.moderation.traces import jsonable, request_summary, scan_trace

if TYPE_CHECKING:
    from ecoalign.moderation.dedup import Deduplicator


@dataclass
class _Escalation:
    """What asking the judge came to: its verdict (None: the scan decides), the tokens, the path, the trace."""

    verdict: JudgeVerdict | None
    tokens: int
    decision: str
    note: str = ""
    trace: dict[str, Any] = field(default_factory=dict)


class Moderator:
    """Scan, decide, escalate the uncertain within budget. Thread-safe if the scanner and judge are."""

    def __init__(
        self,
        scanner: Scanner,
        judge: ModerationJudge | None = None,
        policy: ModerationPolicy | None = None,
        run_budget: RunBudget | None = None,
        dedup: Deduplicator | None = None,
    ) -> None:
        self.scanner = scanner
        self.dedup = dedup  # set: each content is decided once per scope (``ecoalign.moderation.dedup``)
        self.judge = judge
        self.policy = policy or ModerationPolicy()
        self.run_budget = run_budget or RunBudget(None)
        self.model_id = "ecoalign-moderation:" + scanner.evaluator_id + (f"+{judge.judge_id}" if judge else "")

    # -- public API ---------------------------------------------------------------------------------------------
    def warm_up(self) -> float:
        """Load the scanner's models now (a text and a small typed image), so the first items do not pay for it
        and throughput figures measure moderation only. Returns the seconds it took."""
        started = time.monotonic()
        self.scan_many([Request("warm-up"), Request("warm-up", images=(_warm_up_image(),))])
        return time.monotonic() - started

    def moderate(self, request: Request) -> ModerationResult:
        return self.moderate_many([request])[0]

    def moderate_many(self, requests: Sequence[Request]) -> list[ModerationResult]:
        """Results for ``requests``: with a deduplicator, content decided before reuses its decision (no scan, no
        tokens) and only the rest is moderated (``moderate_fresh``)."""
        if self.dedup is None:
            return self.moderate_fresh(requests)
        return self.dedup.moderate_many(requests, lambda idx: self.moderate_fresh([requests[i] for i in idx]))

    def moderate_scanned(self, requests: Sequence[Request], scans: Sequence[Score]) -> list[ModerationResult]:
        """``moderate_many`` for requests scanned elsewhere (``--executor process`` children)."""
        def fresh(idx: list[int]) -> list[ModerationResult]:
            return [self.decide(requests[i], scans[i]) for i in idx]

        if self.dedup is None:
            return fresh(list(range(len(requests))))
        return self.dedup.moderate_many(requests, fresh)

    def moderate_fresh(self, requests: Sequence[Request]) -> list[ModerationResult]:
        """Scan every request in one batch (the scanner batches its models), then decide each; judge calls for
        the uncertain ones run concurrently (``policy.judge_concurrency``)."""
        started = time.monotonic()
        scans = self.scan_many(requests)
        scan_s = (time.monotonic() - started) / max(1, len(requests))
        needs_judge = [self.judge is not None and self.uncertain(s) for s in scans]
        if sum(needs_judge) > 1 and self.policy.judge_concurrency > 1:
            with ThreadPoolExecutor(min(self.policy.judge_concurrency, sum(needs_judge))) as pool:
                futures = [pool.submit(self.decide, r, s, scan_s=scan_s) for r, s in zip(requests, scans, strict=True)]
                return [f.result() for f in futures]
        return [self.decide(r, s, scan_s=scan_s) for r, s in zip(requests, scans, strict=True)]

    def scan_many(self, requests: Sequence[Request]) -> list[Score]:
        if not requests:
            return []
        batch = getattr(self.scanner, "scan_many", None)
        if callable(batch):
            scans = list(batch(list(requests)))
            if len(scans) != len(requests):
                raise RuntimeError(f"scanner returned {len(scans)} scores for {len(requests)} requests")
            return scans
        return [self.scanner.scan(r) for r in requests]

    def uncertain(self, scan: Score) -> bool:
        return self.policy.lo < scan.safety < self.policy.hi

    def decide(self, request: Request, scan: Score, *, scan_s: float | None = None) -> ModerationResult:
        """The decision for one scanned request: settle by the scan, or escalate within the budgets."""
        policy = self.policy
        trace_id = uuid.uuid4().hex
        trace: dict[str, Any] = {
            "trace_id": trace_id,
            "request": request_summary(request),
            "scan": scan_trace(scan, scan_s),
            "policy": policy.to_dict(),
        }
        evaluators = [scan.evaluator or self.scanner.evaluator_id]
        outcome = self._settle(request, scan)
        if outcome.trace:
            trace["escalation"] = outcome.trace
            evaluators.append(outcome.trace["judge"])
        verdict = outcome.verdict
        flagged = verdict.flagged if verdict is not None else _scan_flags(scan, policy, outcome.decision)
        scores = scan_category_scores(scan)
        if verdict is not None and max(verdict.categories.values(), default=0.0) > 0.0:
            scores = {k: verdict.categories.get(k, 0.0) for k in MODERATION_CATEGORIES}  # the costlier evidence
        ecoalign: dict[str, Any] = {
            "decision": outcome.decision,
            "scan_safety": round(scan.safety, 6),
            "weakest_segment": weakest_segment(scan, policy.excerpt_chars),
            "tokens": outcome.tokens,
            "evaluators": evaluators,
            "trace_id": trace_id,
        }
        if outcome.note:
            ecoalign["note"] = outcome.note
        trace.update(decision=outcome.decision, flagged=flagged, tokens=outcome.tokens)
        return ModerationResult(
            flagged=flagged,
            categories=flagged_categories(flagged, scores, policy.category_threshold),
            category_scores={k: round(v, 6) for k, v in scores.items()},
            category_applied_input_types=applied_input_types(request, scan, scores, judged=verdict is not None),
            ecoalign=ecoalign,
            trace=trace,
        )

    # -- escalation ---------------------------------------------------------------------------------------------
    def _settle(self, request: Request, scan: Score) -> _Escalation:
        """The scan's own path when it is confident (or there is no judge), else the judge's within budget."""
        if scan.safety >= self.policy.hi:
            return _Escalation(None, 0, SCAN_SAFE)
        if scan.safety <= self.policy.lo:
            return _Escalation(None, 0, SCAN_UNSAFE)
        if self.judge is None:
            return _Escalation(None, 0, SCAN_NO_JUDGE)
        return self._escalate(request, scan, self.judge)

    def _escalate(self, request: Request, scan: Score, judge: ModerationJudge) -> _Escalation:
        policy = self.policy
        prompt_est = judge.estimate_prompt_tokens(request, scan, policy)
        max_tokens = min(policy.judge_max_tokens, policy.item_budget - prompt_est)
        escalation: dict[str, Any] = {
            "judge": judge.judge_id,
            "item_budget": policy.item_budget,
            "prompt_estimate": prompt_est,
            "max_tokens": max(0, max_tokens),
        }
        if max_tokens < policy.judge_min_tokens:
            note = (
                f"the judge call needs about {prompt_est + policy.judge_min_tokens} tokens, over the item budget "
                f"of {policy.item_budget}: decided by the scan alone"
            )
            return _Escalation(None, 0, SCAN_ITEM_BUDGET, note, escalation)
        estimate = prompt_est + max_tokens
        escalation["reserved"] = estimate
        reservation = self.run_budget.reserve(estimate)
        snap = self.run_budget.snapshot()
        escalation["run_budget"] = {"total": snap.total, "spent": snap.spent, "reserved": snap.reserved}
        if reservation is None:
            note = (
                f"run budget exhausted ({snap.spent} of {snap.total} tokens spent, {snap.reserved} reserved; "
                f"this item needed {estimate}): decided by the scan alone"
            )
            return _Escalation(None, 0, SCAN_RUN_BUDGET, note, escalation)
        try:
            verdict = judge.judge(request, scan, max_tokens=max_tokens, tau=policy.tau)
        except JudgeError as exc:
            self.run_budget.settle(reservation, exc.tokens)
            escalation["error"] = str(exc)
            if exc.raw is not None:
                escalation["raw"] = exc.raw
            escalation["spent"] = exc.tokens
            note = f"judge failed ({exc}): decided by the scan alone"
            return _Escalation(None, exc.tokens, SCAN_JUDGE_FAILED, note, escalation)
        except BaseException:
            self.run_budget.refund(reservation)
            raise
        self.run_budget.settle(reservation, verdict.tokens)
        escalation.update(jsonable(verdict.detail))
        escalation.update(
            spent=verdict.tokens,
            model=verdict.model,
            flagged=verdict.flagged,
            categories=verdict.categories,
            rationale=verdict.rationale,
            prompt=judge.messages_without_images(request, scan),
        )
        return _Escalation(verdict, verdict.tokens, JUDGE, "", escalation)


def _scan_flags(scan: Score, policy: ModerationPolicy, decision: str) -> bool:
    """Whether the scan alone flags the item: confident-unsafe always, an uncertain item below ``tau``."""
    if decision == SCAN_SAFE:
        return False
    if decision == SCAN_UNSAFE:
        return True
    return scan.safety < policy.tau


def _warm_up_image() -> Image:
    from PIL import Image as PILImage
    from PIL import ImageDraw

    canvas = PILImage.new("RGB", (160, 48), "white")
    ImageDraw.Draw(canvas).text((8, 16), "warm up 1. 2.", fill="black")
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return Image(data=buf.getvalue(), media_type="image/png", source="warm-up")
