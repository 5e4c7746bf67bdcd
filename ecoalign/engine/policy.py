"""The policy π: budget, thresholds and search shape of one job. Defaults are METHOD.md's."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

RefusalMode = Literal["template", "model"]


class PolicyError(ValueError):
    """A policy value is out of range; the message names the field."""


@dataclass(frozen=True)
class Policy:
    """Everything the search needs to know besides the graph and the ledger."""

    budget: int = 4000  # B, tokens (prompt + completion, as reported by ``usage``), scoring included
    tau: float = 0.5  # τ: minimum path safety
    tau_hard: float = 0.1  # scan below this → straight to a refusal
    tau_easy: float = 0.95  # scan above this → a cheap direct answer first
    branching: int = 3  # m: thoughts per expansion
    lookahead: int = 2  # k: horizon at full budget
    discount: float = 0.9  # δ
    cost_weight: float = 0.05  # λ: utility per 1k tokens
    max_depth: int = 4  # D: answers at depth ≤ D, thoughts at depth ≤ D - 1
    max_in_flight: int = 4  # nodes generating at once per job
    thought_tokens: int = 96  # max completion tokens of a thought
    answer_tokens: int = 256  # max completion tokens of an answer
    refusal_tokens: int = 96  # max completion tokens of a model-written refusal
    refusal_mode: RefusalMode = "template"  # template refusals cost 0 tokens; "model" ones are reserved up front
    eval_tokens: int = 0  # expected tokens the node evaluator spends per node (0 offline, ~300 for an LLM judge)
    image_tokens: int = 768  # prompt-token estimate per image part (vision encoders vary: 256–1105)
    prior_utility: float = 0.5  # μ0: forecast utility of an answer straight from the request
    think_gain: float = 0.25  # forecast share of the remaining utility headroom one reasoning step gains
    forecast_sigma: float = 0.15  # σ: forecast uncertainty of a node's utility
    temperature: float = 0.7
    allow_merge: bool = False  # plan merge thoughts (one thought from two lines of reasoning): a graph, not a tree

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool]] = [
            ("budget", self.budget >= 0),
            ("tau", 0.0 <= self.tau <= 1.0),
            ("tau_hard", 0.0 <= self.tau_hard <= self.tau),
            ("tau_easy", self.tau <= self.tau_easy <= 1.0),
            ("branching", 1 <= self.branching <= 16),
            ("lookahead", 1 <= self.lookahead <= 16),
            ("discount", 0.0 < self.discount <= 1.0),
            ("cost_weight", self.cost_weight >= 0.0),
            ("max_depth", 1 <= self.max_depth <= 16),
            ("max_in_flight", 1 <= self.max_in_flight <= 256),
            ("thought_tokens", self.thought_tokens >= 1),
            ("answer_tokens", self.answer_tokens >= 1),
            ("refusal_tokens", self.refusal_tokens >= 1),
            ("refusal_mode", self.refusal_mode in ("template", "model")),
            ("eval_tokens", self.eval_tokens >= 0),
            ("image_tokens", self.image_tokens >= 0),
            ("prior_utility", 0.0 <= self.prior_utility <= 1.0),
            ("think_gain", 0.0 <= self.think_gain <= 1.0),
            ("forecast_sigma", self.forecast_sigma > 0.0),
            ("temperature", 0.0 <= self.temperature <= 2.0),
            ("allow_merge", isinstance(self.allow_merge, bool)),
        ]
        for name, ok in checks:
            if not ok:
                raise PolicyError(f"policy.{name} out of range: {getattr(self, name)!r}")

    @property
    def refusal_reserve(self) -> int:
        """Tokens kept back from the start so the job can always end with a refusal."""
        return self.refusal_tokens + self.eval_tokens if self.refusal_mode == "model" else 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Policy:
        """Build from a (possibly partial) mapping; unknown keys are an error naming the key."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PolicyError(f"unknown policy field(s): {', '.join(unknown)}")
        return cls(**data)

    def with_(self, **changes: Any) -> Policy:
        return replace(self, **changes)
