"""Escalation as an economic decision: buy a piece of evidence only when it is worth more than it costs.

Pure and typed (no I/O): the moderator hands it numbers and gets numbers back, so every purchase and every
refusal can be written into the trace with the figures that decided it.

With ``p`` the calibrated probability that the item is harmful in its lead category, and that category's cost of a
miss ``c_m`` and of a false flag ``c_f``, deciding now costs in expectation ``min(p*c_m, (1-p)*c_f)`` (flag when
``p*c_m > (1-p)*c_f``). A piece of evidence with accuracy ``a`` (its verdict is right with probability ``a``,
harmful or not) says "harmful" with probability ``q = a*p + (1-a)*(1-p)``; after it, Bayes gives the posterior and
its own expected cost. The expected value of information is the drop::

    EVOI = min(p*c_m, (1-p)*c_f) - [q*cost(p|harmful) + (1-q)*cost(p|harmless)]

It is bought when ``EVOI > tokens * token_price / 1000`` and the tokens fit in what is left of the item's and
the run's budget; among several, the one with the largest net value first, then the rest are appraised again at
the posterior (a second judge after the first, and so on). The fixed band (``lo < safety < hi``) is kept as the
baseline (``band_escalates``).
"""

from __future__ import annotations

from dataclasses import dataclass

_EPS = 1e-9


@dataclass(frozen=True)
class Evidence:
    """A piece of evidence the moderator could buy: its name, its estimated tokens and its accuracy."""

    kind: str
    tokens: int
    accuracy: float


@dataclass(frozen=True)
class Appraisal:
    """What one piece of evidence is worth at the current probability, and whether to buy it (``reason`` if not)."""

    evidence: Evidence
    evoi: float
    token_cost: float
    affordable: bool
    reason: str

    @property
    def net(self) -> float:
        return self.evoi - self.token_cost

    def as_trace(self) -> dict[str, object]:
        return {
            "evidence": self.evidence.kind,
            "tokens": self.evidence.tokens,
            "accuracy": self.evidence.accuracy,
            "evoi": round(self.evoi, 6),
            "token_cost": round(self.token_cost, 6),
            "net": round(self.net, 6),
            "affordable": self.affordable,
            "reason": self.reason,
        }


def expected_cost(p: float, miss: float, false_flag: float) -> float:
    """The expected error cost of the best decision now: flag (risk a false flag) or pass (risk a miss)."""
    return min(p * miss, (1.0 - p) * false_flag)


def should_flag(p: float, miss: float, false_flag: float) -> bool:
    """Bayes' decision: flag when passing would cost more in expectation than flagging."""
    return p * miss > (1.0 - p) * false_flag


def posterior(p: float, accuracy: float, says_harmful: bool) -> float:
    """P(harmful | the evidence's verdict) for evidence right with probability ``accuracy`` either way."""
    if says_harmful:
        num, den = accuracy * p, accuracy * p + (1.0 - accuracy) * (1.0 - p)
    else:
        num, den = (1.0 - accuracy) * p, (1.0 - accuracy) * p + accuracy * (1.0 - p)
    return num / den if den > _EPS else p


def evoi(p: float, accuracy: float, miss: float, false_flag: float) -> float:
    """Expected reduction of the error cost from observing one verdict of this accuracy (never negative)."""
    q = accuracy * p + (1.0 - accuracy) * (1.0 - p)
    after = q * expected_cost(posterior(p, accuracy, True), miss, false_flag) + (1.0 - q) * expected_cost(
        posterior(p, accuracy, False), miss, false_flag
    )
    return max(0.0, expected_cost(p, miss, false_flag) - after)


def appraise(
    p: float,
    miss: float,
    false_flag: float,
    options: tuple[Evidence, ...],
    *,
    token_price: float,
    item_left: int,
    run_left: int | None,
) -> list[Appraisal]:
    """Each option's EVOI against its token cost (``token_price`` per 1000 tokens) and the budgets left."""
    out = []
    for option in options:
        value = evoi(p, option.accuracy, miss, false_flag)
        cost = option.tokens * token_price / 1000.0
        if option.tokens > item_left:
            affordable, reason = False, f"needs {option.tokens} tokens, {item_left} left in the item budget"
        elif run_left is not None and option.tokens > run_left:
            affordable, reason = False, f"needs {option.tokens} tokens, {run_left} left in the run budget"
        elif value <= cost:
            affordable, reason = True, "EVOI does not exceed its token cost"
        else:
            affordable, reason = True, "worth buying"
        out.append(Appraisal(option, value, cost, affordable, reason))
    return out


def choose(appraisals: list[Appraisal]) -> Appraisal | None:
    """The affordable option of largest positive net value, or None (buy nothing more)."""
    worth = [a for a in appraisals if a.affordable and a.net > 0.0]
    return max(worth, key=lambda a: (a.net, -a.evidence.tokens)) if worth else None


def budget_blocked(appraisals: list[Appraisal]) -> bool:
    """Whether some option would have been worth its cost but did not fit in a budget (the item stays uncertain
    for want of tokens, not because more evidence was not worth buying)."""
    return any(not a.affordable and a.net > 0.0 for a in appraisals)


def band_escalates(safety: float, lo: float, hi: float) -> bool:
    """The baseline: escalate every item whose scan safety is strictly inside the band."""
    return lo < safety < hi


def calibrated_probability(safety: float, floor: float = 0.001) -> float:
    """The probability of harm the scan's safety stands for, kept off 0 and 1 so evidence can still move it.

    The identity (``1 - safety``) is the default calibration; ``benchmarks/escalation.py`` prints how well it is
    calibrated on the dev data (expected calibration error).
    """
    return min(1.0 - floor, max(floor, 1.0 - safety))
