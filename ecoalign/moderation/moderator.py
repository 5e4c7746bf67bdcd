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

That is the ``band`` escalation (the baseline). Under ``escalation: "value"`` there is no band: each item buys
evidence (a judge call on the text and OCR text, one with the images, a second opinion) only while its expected
value of information exceeds its token cost at the policy's price (``ecoalign.moderation.escalation``, pure), and
is flagged by Bayes' decision on the resulting probability; every option appraised, bought or not, is in the trace.
The policy's categories in force, per-category thresholds and actions then give the flagged categories and the
item's ``action`` (``flag`` / ``review`` / ``block``; ``none`` when not flagged).

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
    VALUE_BUDGET,
    VALUE_NOT_WORTH,
)
from ecoalign.moderation.escalation import (
    Evidence,
    appraise,
    band_escalates,
    budget_blocked,
    calibrated_probability,
    choose,
    expected_cost,
    posterior,
    should_flag,
)
from ecoalign.moderation.judge import JudgeError, JudgeVerdict, ModerationJudge
from ecoalign.moderation.policy import ModerationPolicy
from ecoalign.moderation.result import (
    ModerationResult,
    applied_input_types,
    item_action,
    policy_categories,
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
    flagged: bool | None = None  # the decision's own flag (value escalation), else the verdict's or the scan's


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
        """Whether the item may buy evidence: inside the band, or (value escalation) not yet certain."""
        if self.policy.escalation == "value":
            return 0.0 < scan.safety < 1.0
        return band_escalates(scan.safety, self.policy.lo, self.policy.hi)

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
            if outcome.verdict is not None or "calls" not in outcome.trace:
                evaluators.append(outcome.trace["judge"])
        verdict = outcome.verdict
        if outcome.flagged is not None:
            flagged = outcome.flagged
        else:
            flagged = verdict.flagged if verdict is not None else _scan_flags(scan, policy, outcome.decision)
        scores = scan_category_scores(scan)
        if verdict is not None and max(verdict.categories.values(), default=0.0) > 0.0:
            scores = {k: verdict.categories.get(k, 0.0) for k in MODERATION_CATEGORIES}  # the costlier evidence
        custom = {c.name: (verdict.custom.get(c.name, 0.0) if verdict else 0.0) for c in policy.custom_categories}
        marked = policy_categories(flagged, scores, custom, policy)
        flagged = any(marked.values())
        action, actions = item_action(marked, policy)
        ecoalign: dict[str, Any] = {
            "decision": outcome.decision,
            "scan_safety": round(scan.safety, 6),
            "weakest_segment": weakest_segment(scan, policy.excerpt_chars),
            "tokens": outcome.tokens,
            "evaluators": evaluators,
            "trace_id": trace_id,
            "policy": policy.ref,
            "escalation": policy.escalation,
            "action": action,
            "actions": actions,
        }
        if policy.custom_categories:
            ecoalign["custom_categories"] = {
                name: {"flagged": marked[name], "score": round(score, 6) if verdict is not None else None}
                for name, score in custom.items()
            }
        if outcome.note:
            ecoalign["note"] = outcome.note
        trace.update(decision=outcome.decision, flagged=flagged, tokens=outcome.tokens, action=action)
        return ModerationResult(
            flagged=flagged,
            categories={k: marked[k] for k in MODERATION_CATEGORIES},
            category_scores={k: round(v, 6) for k, v in scores.items()},
            category_applied_input_types=applied_input_types(request, scan, scores, judged=verdict is not None),
            ecoalign=ecoalign,
            trace=trace,
        )

    # -- escalation ---------------------------------------------------------------------------------------------
    def _settle(self, request: Request, scan: Score) -> _Escalation:
        """The policy's escalation: the value of information per item, or the band (confident scans settle
        alone, uncertain ones go to the judge within budget)."""
        if self.policy.escalation == "value":
            return self._escalate_by_value(request, scan)
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
            "mode": "band",
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
        call = self._call_judge(request, scan, judge, max_tokens=max_tokens, estimate=prompt_est + max_tokens)
        escalation.update(call.trace)
        if call.refused:
            return _Escalation(None, 0, SCAN_RUN_BUDGET, call.note, escalation)
        if call.verdict is None:
            return _Escalation(None, call.tokens, SCAN_JUDGE_FAILED, call.note, escalation)
        return _Escalation(call.verdict, call.tokens, JUDGE, "", escalation)

    def _call_judge(
        self,
        request: Request,
        scan: Score,
        judge: ModerationJudge,
        *,
        max_tokens: int,
        estimate: int,
        images: bool | None = None,
        seed: int = 0,
    ) -> _Call:
        """One judge call, its estimate reserved on the run budget first and settled with the real usage."""
        policy = self.policy
        trace: dict[str, Any] = {"reserved": estimate}
        reservation = self.run_budget.reserve(estimate)
        snap = self.run_budget.snapshot()
        trace["run_budget"] = {"total": snap.total, "spent": snap.spent, "reserved": snap.reserved}
        if reservation is None:
            note = (
                f"run budget exhausted ({snap.spent} of {snap.total} tokens spent, {snap.reserved} reserved; "
                f"this item needed {estimate}): decided by the scan alone"
            )
            return _Call(None, 0, trace, note, refused=True)
        try:
            verdict = judge.judge(
                request, scan, max_tokens=max_tokens, tau=policy.tau, images=images, seed=seed, policy=policy
            )
        except JudgeError as exc:
            self.run_budget.settle(reservation, exc.tokens)
            trace["error"] = str(exc)
            if exc.raw is not None:
                trace["raw"] = exc.raw
            trace["spent"] = exc.tokens
            return _Call(None, exc.tokens, trace, f"judge failed ({exc}): decided by the scan alone")
        except BaseException:
            self.run_budget.refund(reservation)
            raise
        self.run_budget.settle(reservation, verdict.tokens)
        trace.update(jsonable(verdict.detail))
        trace.update(
            spent=verdict.tokens,
            model=verdict.model,
            flagged=verdict.flagged,
            categories=verdict.categories,
            custom_categories=verdict.custom,
            rationale=verdict.rationale,
            prompt=judge.messages_without_images(request, scan, images=images, policy=policy),
        )
        return _Call(verdict, verdict.tokens, trace)

    # -- escalation by the value of information -----------------------------------------------------------------
    def _options(
        self, request: Request, scan: Score, judge: ModerationJudge, spent: int, first: _Bought | None
    ) -> dict[str, tuple[Evidence, bool, int]]:
        """The evidence still for sale: ``kind -> (evidence, with images, max_tokens)``. Before any judge call, a
        judge call on the text (and OCR text) and, if the item has images the judge can see, one with the images;
        after one, a second opinion of the same kind. Priced at what a call reserves (prompt estimate + max). A
        text-only call on an item with an image OCR read nothing of is worth nothing (accuracy 0.5): it cannot see
        that image."""
        policy = self.policy
        read = sum(1 for seg in scan.segments if seg.kind == "image" and seg.text.strip())
        blind = len(request.images) > read
        left = policy.item_budget - spent
        kinds: list[tuple[str, bool]]
        if first is None:
            kinds = [("judge_text", False)]
            if request.images and judge.send_images:
                kinds.append(("judge_images", True))
        elif first.seed == 0:
            kinds = [("second_judge", first.images)]
        else:
            kinds = []
        out = {}
        for kind, images in kinds:
            prompt_est = judge.estimate_prompt_tokens(request, scan, policy, images=images)
            max_tokens = max(policy.judge_min_tokens, min(policy.judge_max_tokens, left - prompt_est))
            accuracy = 0.5 if blind and not images else policy.accuracy(kind)
            out[kind] = (Evidence(kind, prompt_est + max_tokens, accuracy), images, max_tokens)
        return out

    def _escalate_by_value(self, request: Request, scan: Score) -> _Escalation:
        """Buy evidence while its expected value of information exceeds its token cost (``escalation``)."""
        policy, judge = self.policy, self.judge
        lead = lead_category(scan_category_scores(scan), policy)
        cost = policy.cost(lead)
        p = calibrated_probability(scan.safety)
        trace: dict[str, Any] = {
            "mode": "value",
            "judge": judge.judge_id if judge is not None else None,
            "lead_category": lead,
            "costs": {"miss": cost.miss, "false_flag": cost.false_flag},
            "token_price_per_1k": policy.token_price,
            "item_budget": policy.item_budget,
            "p_scan": round(p, 6),
            "steps": [],
            "calls": [],
        }
        spent, bought, verdict = 0, None, None
        blocked, failure = False, ""
        while judge is not None:
            options = self._options(request, scan, judge, spent, bought)
            appraisals = appraise(
                p, cost.miss, cost.false_flag, tuple(e for e, _, _ in options.values()),
                token_price=policy.token_price, item_left=policy.item_budget - spent,
                run_left=self.run_budget.snapshot().remaining,
            )
            pick = choose(appraisals)
            blocked = budget_blocked(appraisals)
            trace["steps"].append({
                "p": round(p, 6),
                "expected_cost": round(expected_cost(p, cost.miss, cost.false_flag), 6),
                "options": [{**a.as_trace(), "bought": a is pick} for a in appraisals],
            })
            if pick is None:
                break
            _, images, max_tokens = options[pick.evidence.kind]
            seed = 0 if bought is None else 1
            call = self._call_judge(
                request, scan, judge, max_tokens=max_tokens, estimate=pick.evidence.tokens, images=images, seed=seed
            )
            spent += call.tokens
            trace["calls"].append({"evidence": pick.evidence.kind, "images": images, "seed": seed, **call.trace})
            if call.verdict is None:
                blocked, failure = call.refused, call.note
                break
            p = posterior(p, pick.evidence.accuracy, call.verdict.flagged)
            bought, verdict = _Bought(images, seed), call.verdict
        trace.update(p_final=round(p, 6), expected_cost=round(expected_cost(p, cost.miss, cost.false_flag), 6))
        flagged = should_flag(p, cost.miss, cost.false_flag)
        if verdict is not None:
            decision, note = JUDGE, ""
        elif judge is None:
            decision, note = SCAN_NO_JUDGE, ""
        elif failure and not blocked:
            decision, note = SCAN_JUDGE_FAILED, failure
        elif blocked:
            decision, note = VALUE_BUDGET, failure or "evidence worth its cost did not fit in the budget left"
        else:
            decision, note = VALUE_NOT_WORTH, ""
        return _Escalation(verdict, spent, decision, note, trace, flagged=flagged)


@dataclass(frozen=True)
class _Bought:
    images: bool
    seed: int


@dataclass
class _Call:
    """One judge call: its verdict (None: refused by the run budget, or failed), tokens, trace, note."""

    verdict: JudgeVerdict | None
    tokens: int
    trace: dict[str, Any]
    note: str = ""
    refused: bool = False


def lead_category(scores: dict[str, float], policy: ModerationPolicy) -> str:
    """The category most at stake: the in-force OpenAI category the scan scores highest, or, when the scan scores
    none, the category in force whose miss costs most."""
    scored = [k for k in policy.categories if scores.get(k, 0.0) > 0.0]
    if scored:
        return max(scored, key=lambda k: scores[k])
    return max(policy.in_force, key=lambda k: policy.cost(k).miss)


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
