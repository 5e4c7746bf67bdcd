"""The valuator: the net present value of an action, with the safety gate and the budget-adaptive horizon.

    Γ(a | v) = Σ_{t=1..h} δ^(t-1) · E[ΔU_t] − λ · E[C_t] / 1000        (METHOD.md, component 3)

The expectations come from a ``Forecaster``. The default, ``RolloutForecaster``, simulates the next ``h`` steps
of the search analytically from the scores already in the graph (the "evaluator's forecast" form of a simulated
rollout): it spends no tokens, so it is pure and free. Any other pure forecaster plugs in through the same
protocol; one backed by short model continuations cannot (the forecaster runs inside the engine's pure step),
it needs rollouts planned as charged nodes (the design is in docs/results.md, "Not done").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Protocol

NEG_INF = float("-inf")
_SQRT_2 = math.sqrt(2.0)
_SQRT_2PI = math.sqrt(2.0 * math.pi)


class ActionKind(StrEnum):
    THINK = "think"  # expand m thoughts from a node
    ANSWER = "answer"  # write a final answer from a node
    MERGE = "merge"  # one thought that combines two lines of reasoning (a node with two parents)
    REFUSE = "refuse"  # the outside option: end safely with a refusal


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    sources: tuple[str, ...]  # the node(s) the action starts from


@dataclass(frozen=True)
class Forecast:
    """Expected per-step utility gains and token costs over the horizon, and the forecast safety ŝ(a)."""

    delta_utility: tuple[float, ...]
    cost: tuple[float, ...]
    safety: float


@dataclass(frozen=True)
class ActionContext:
    """What a forecaster may know about an action: scores of its source, the best complete path so far."""

    action: Action
    source_safety: float  # S(path to source), weakest link over its lineage
    source_promise: float  # forecast utility of an answer written from the source (μ)
    depth: int  # depth of the source
    best_utility: float  # U* of the best selectable complete path so far (0 if none)
    step_cost: float  # tokens one generation of this action costs (per node)
    answer_cost: float  # tokens an answer from the next node would cost
    think_depth_left: int  # how many more thought layers the max depth allows below the source


def horizon(lookahead: int, remaining: int, budget: int, *, adaptive: bool = True) -> int:
    """h = max(1, ceil(k · R / B)): the agent grows myopic as the budget runs out."""
    if not adaptive:
        return max(1, lookahead)
    if budget <= 0:
        return 1
    return max(1, math.ceil(lookahead * max(0, remaining) / budget))


def normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / _SQRT_2))


def normal_pdf(z: float) -> float:
    return math.exp(-0.5 * z * z) / _SQRT_2PI


def expected_improvement(mean: float, sigma: float, incumbent: float) -> float:
    """E[max(0, X − U*)] for X ~ N(mean, sigma²): the expected gain over the best path so far."""
    if sigma <= 0:
        return max(0.0, mean - incumbent)
    z = (mean - incumbent) / sigma
    return (mean - incumbent) * normal_cdf(z) + sigma * normal_pdf(z)


def net_present_value(forecast: Forecast, discount: float, cost_weight: float) -> float:
    """Σ δ^(t-1) (E[ΔU_t] − λ E[C_t]/1000): each step's net gain, discounted by how far ahead it lies."""
    total = 0.0
    for t, (gain, cost) in enumerate(zip(forecast.delta_utility, forecast.cost, strict=True)):
        total += discount**t * (gain - cost_weight * cost / 1000.0)
    return total


class Forecaster(Protocol):
    def forecast(self, ctx: ActionContext, horizon: int) -> Forecast: ...


@dataclass(frozen=True)
class RolloutForecaster:
    """Simulates the action and then "think, think, …, answer" until the horizon or the depth limit.

    Utility model: one reasoning step closes ``think_gain`` of the headroom 1 − μ; the best of ``m`` children
    adds the expected maximum of m draws (σ·e_m); uncertainty grows with every simulated step. A child is
    kept only if its safety clears τ: the chance of that, P(safe) = Φ((S − τ)/σ), discounts every gain behind it.
    """

    tau: float
    branching: int
    think_gain: float
    sigma: float

    def _p_safe(self, safety: float) -> float:
        return normal_cdf((safety - self.tau) / self.sigma)

    def forecast(self, ctx: ActionContext, horizon: int) -> Forecast:
        p_safe = self._p_safe(ctx.source_safety)
        kind = ctx.action.kind
        if kind is ActionKind.REFUSE:
            return Forecast((0.0,), (0.0,), 1.0)
        if kind is ActionKind.ANSWER:
            gain = p_safe * expected_improvement(ctx.source_promise, self.sigma, ctx.best_utility)
            return Forecast((gain,), (ctx.step_cost,), ctx.source_safety)
        # THINK or MERGE: pay now, collect later by answering from the best new thought.
        width = self.branching if kind is ActionKind.THINK else 1
        gains: list[float] = [0.0]
        costs: list[float] = [ctx.step_cost * width]
        mean = ctx.source_promise
        layers_left = ctx.think_depth_left
        survive = p_safe
        for t in range(2, horizon + 1):
            mean = mean + self.think_gain * (1.0 - mean)
            sigma_t = self.sigma * math.sqrt(t)
            best_of = mean + sigma_t * expected_max_of_normals(width) * 0.5
            is_last = t == horizon or layers_left <= 0
            if is_last:
                gains.append(survive * expected_improvement(min(best_of, 1.0), sigma_t, ctx.best_utility))
                costs.append(ctx.answer_cost)
                break
            # a further simulated thought layer: no utility yet, more cost, another safety hurdle
            gains.append(0.0)
            costs.append(ctx.step_cost * self.branching)
            survive *= p_safe
            layers_left -= 1
            width = self.branching
        return Forecast(tuple(gains), tuple(costs), ctx.source_safety)


@cache
def expected_max_of_normals(n: int) -> float:
    """E[max of n standard normals] (Blom's approximation); 0 for n = 1.

    Remembered per n (the branching factor, a handful of values): the bisection below costs 80 ``erf`` calls and
    every THINK forecast asks for it.
    """
    if n <= 1:
        return 0.0
    alpha = 0.375
    p = (n - alpha) / (n - 2 * alpha + 1)
    return _normal_ppf(p)


def _normal_ppf(p: float) -> float:
    """Inverse normal CDF by bisection: enough precision for a forecast, no SciPy needed."""
    lo, hi = -10.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if normal_cdf(mid) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def committed_tokens(ctx: ActionContext, nodes: int) -> float:
    """The tokens an action commits the budget to before it can pay off: E[C_1] of its own ``nodes``, and for a
    think or a merge also the answer after it.

    A thought has no utility of its own (the forecast credits every gain of a think to the answer written after
    it), so a think whose follow-up answer no longer fits the remaining budget has only its cost: the budget
    constraint of the NPV's first two steps, not just of the first. Further simulated thought layers (h > 2)
    are options the search may skip, so they are not committed.
    """
    own = ctx.step_cost * nodes
    if ctx.action.kind in (ActionKind.THINK, ActionKind.MERGE):
        return own + ctx.answer_cost
    return own


def gated_value(
    forecast: Forecast, source_safety: float, tau: float, discount: float, cost_weight: float, *, gate: bool = True
) -> float:
    """The safety gate: if min(S(path to v), ŝ(a)) < τ the action is worth −∞; otherwise its NPV."""
    if gate and min(source_safety, forecast.safety) < tau:
        return NEG_INF
    return net_present_value(forecast, discount, cost_weight)
