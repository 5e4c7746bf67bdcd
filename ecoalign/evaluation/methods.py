"""The methods an evaluation compares: each is one engine strategy with the policy it runs under.

Every method runs through the same engine, model and evaluators; they differ only in the strategy's flags
(``ecoalign.engine.strategies``) and in the budget. The cost-blind baselines (``direct``, ``filter``,
``best_of_n``, ``tot_mean``) have no budget in METHOD.md, so they run with ``UNBOUNDED_BUDGET`` (their own shape,
``m`` and ``D``, bounds what they spend); EcoAlign and its ablations run under the policy's budget B.
"""

from __future__ import annotations

from ecoalign.engine.policy import Policy
from ecoalign.engine.strategies import STRATEGIES, Mode, get_strategy

UNBOUNDED_BUDGET = 1_000_000_000  # fits the ledger's integer columns on every database
DEFAULT_METHODS = ("ecoalign", "direct", "filter", "best_of_n", "tot_mean")
ALL_METHODS = tuple(STRATEGIES)


def parse_methods(value: str | None) -> tuple[str, ...]:
    """A comma-separated list of method names (``all`` for every one); raises ``ValueError`` naming a bad one."""
    if not value:
        return DEFAULT_METHODS
    if value.strip() == "all":
        return ALL_METHODS
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    for name in names:
        get_strategy(name)
    if not names:
        raise ValueError("--methods is empty")
    return names


def method_policy(method: str, policy: Policy) -> Policy:
    """The policy ``method`` runs under: the given one, without a budget for the cost-blind baselines."""
    if get_strategy(method).mode is not Mode.NPV:
        return policy.with_(budget=UNBOUNDED_BUDGET)
    return policy
