"""Search strategies: EcoAlign, its three ablations and the baselines of METHOD.md, as settings of one machine."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ecoalign.engine.metrics import SafetyAggregate, mean_safety, weakest_link


class Mode(StrEnum):
    NPV = "npv"  # value every open action, take the best while its value is positive
    DIRECT = "direct"  # one answer from the request
    BEST_OF_N = "best_of_n"  # n answers from the request
    BFS = "bfs"  # breadth-first tree of thoughts to depth D, answers at the leaves


@dataclass(frozen=True)
class Strategy:
    name: str
    mode: Mode = Mode.NPV
    aggregate: SafetyAggregate = weakest_link  # how step safeties make a path's safety
    use_scan: bool = True  # act on the scanner (hard refusal, easy direct path, safety prior)
    gate: bool = True  # prune unsafe paths and refuse when no safe answer exists
    cost_control: bool = True  # λ in the value function and the economic stop
    adaptive_horizon: bool = True  # h = ceil(k·R/B) instead of the fixed k
    description: str = ""

    @property
    def aggregate_name(self) -> str:
        return "mean" if self.aggregate is mean_safety else "min"


ECOALIGN = Strategy("ecoalign", description="NPV search, weakest-link safety, economic stop, adaptive horizon")
NO_WEAKEST_LINK = Strategy(
    "ecoalign_mean", aggregate=mean_safety, description="ablation: mean path safety instead of the minimum"
)
NO_COST_CONTROL = Strategy("ecoalign_no_cost", cost_control=False, description="ablation: λ = 0 and no economic stop")
FIXED_HORIZON = Strategy("ecoalign_fixed_horizon", adaptive_horizon=False, description="ablation: horizon fixed at k")
DIRECT = Strategy(
    "direct", mode=Mode.DIRECT, use_scan=False, gate=False, cost_control=False, description="one generation, no checks"
)
FILTER = Strategy(
    "filter",
    mode=Mode.DIRECT,
    use_scan=False,
    cost_control=False,
    description="one generation, refused if the evaluator flags it",
)
BEST_OF_N = Strategy(
    "best_of_n",
    mode=Mode.BEST_OF_N,
    use_scan=False,
    cost_control=False,
    description="n answers, best utility among the safe ones",
)
TOT_MEAN = Strategy(
    "tot_mean",
    mode=Mode.BFS,
    aggregate=mean_safety,
    use_scan=False,
    cost_control=False,
    description="breadth-first tree of thoughts, mean path safety, no budget awareness",
)

STRATEGIES: dict[str, Strategy] = {
    s.name: s for s in (ECOALIGN, NO_WEAKEST_LINK, NO_COST_CONTROL, FIXED_HORIZON, DIRECT, FILTER, BEST_OF_N, TOT_MEAN)
}


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; choose one of: {', '.join(STRATEGIES)}") from None
