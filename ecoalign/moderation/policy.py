"""The moderation policy of one run: which categories are in force, their thresholds, costs and actions, how the
uncertain items are escalated, and the budgets; checked when built so a bad value fails early.

One concept for every door: the CLI's ``--policy`` overrides and ``--policy-file``, the request's default and a
tenant's stored, versioned policy (``ecoalign.policies``: its pydantic document is this policy's JSON form) all end
as one ``ModerationPolicy``. ``policy_id``/``policy_version`` name what a result was decided under (``default``
version 0 is the built-in policy nobody stored).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ecoalign.categories import MODERATION_CATEGORIES


class PolicyError(ValueError):
    """A moderation policy value is out of range; the message names it."""


ACTIONS: tuple[str, ...] = ("flag", "review", "block")  # in rising severity: an item's action is its strongest
ESCALATIONS: tuple[str, ...] = ("band", "value")
EVIDENCE_KINDS: tuple[str, ...] = ("judge_text", "judge_images", "second_judge")
BUILTIN_POLICY_ID = "default"


@dataclass(frozen=True)
class CustomCategory:
    """A tenant's own category: the LLM judge scores it from its written description."""

    name: str
    description: str


@dataclass(frozen=True)
class ErrorCost:
    """What one wrong decision in a category costs, in the policy's cost units: missing a harmful item, or flagging
    a harmless one."""

    miss: float = 1.0
    false_flag: float = 1.0


DEFAULT_EVIDENCE_ACCURACY: dict[str, float] = {"judge_text": 0.85, "judge_images": 0.9, "second_judge": 0.85}


@dataclass(frozen=True)
class ModerationPolicy:
    """Thresholds, costs, actions and budgets of one moderation run (safety is 0..1, 1 = safe).

    ``escalation`` chooses how uncertain items buy evidence: ``band`` (the baseline) sends an item with
    ``lo < safety < hi`` to one judge call; ``value`` buys each piece of evidence only when its expected value of
    information exceeds its token cost at ``token_price`` (cost units per 1000 tokens), see
    ``ecoalign.moderation.escalation``. ``tau`` is the flag threshold whenever the scan decides an uncertain band
    item (and for the judge's safety); ``thresholds`` override ``category_threshold`` per category; ``costs`` and
    ``actions`` are per category (default ``ErrorCost()`` and ``flag``). ``item_budget`` caps the tokens one item
    may spend, ``run_budget`` a whole run (None: the caller's); ``image_token_estimate`` is what one image is
    assumed to cost in a judge prompt; ``evidence_accuracy`` is the accuracy model of each evidence kind.
    """

    hi: float = 0.9
    lo: float = 0.1
    tau: float = 0.5
    category_threshold: float = 0.5
    item_budget: int = 2000
    judge_max_tokens: int = 256
    judge_min_tokens: int = 32
    image_token_estimate: int = 1024
    judge_concurrency: int = 4
    excerpt_chars: int = 160
    policy_id: str = BUILTIN_POLICY_ID
    policy_version: int = 0
    categories: tuple[str, ...] = MODERATION_CATEGORIES
    custom_categories: tuple[CustomCategory, ...] = ()
    thresholds: Mapping[str, float] = field(default_factory=dict)
    costs: Mapping[str, ErrorCost] = field(default_factory=dict)
    actions: Mapping[str, str] = field(default_factory=dict)
    escalation: str = "band"
    run_budget: int | None = None
    token_price: float = 0.1
    evidence_accuracy: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_EVIDENCE_ACCURACY))

    def __post_init__(self) -> None:
        for name in ("hi", "lo", "tau", "category_threshold"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise PolicyError(f"{name} must be in 0..1, got {value}")
        if not self.lo <= self.tau <= self.hi:
            raise PolicyError(f"need lo <= tau <= hi, got lo={self.lo} tau={self.tau} hi={self.hi}")
        for name in ("item_budget", "judge_max_tokens", "judge_min_tokens", "image_token_estimate"):
            if getattr(self, name) < 0:
                raise PolicyError(f"{name} must be >= 0")
        if self.judge_concurrency < 1:
            raise PolicyError("judge_concurrency must be >= 1")
        self._check_categories()
        if self.escalation not in ESCALATIONS:
            raise PolicyError(f"escalation must be one of {', '.join(ESCALATIONS)}, got {self.escalation!r}")
        if self.run_budget is not None and self.run_budget < 0:
            raise PolicyError("run_budget must be >= 0")
        if self.token_price < 0:
            raise PolicyError("token_price must be >= 0")
        for kind, accuracy in self.evidence_accuracy.items():
            if kind not in EVIDENCE_KINDS or not 0.5 <= accuracy <= 1.0:
                raise PolicyError(f"evidence_accuracy.{kind}: a kind of {', '.join(EVIDENCE_KINDS)} in 0.5..1")

    def _check_categories(self) -> None:
        unknown = [c for c in self.categories if c not in MODERATION_CATEGORIES]
        if unknown:
            raise PolicyError(f"categories: {', '.join(unknown)} not an OpenAI moderation category")
        names = [c.name for c in self.custom_categories]
        clash = sorted({n for n in names if n in MODERATION_CATEGORIES or names.count(n) > 1})
        if clash:
            raise PolicyError(f"custom_categories: {', '.join(clash)} repeats a category name")
        in_force = set(self.in_force)
        for what, table in (("thresholds", self.thresholds), ("costs", self.costs), ("actions", self.actions)):
            stray = sorted(set(table) - in_force)
            if stray:
                raise PolicyError(f"{what}: {', '.join(stray)} not a category in force")
        for key, value in self.thresholds.items():
            if not 0.0 <= value <= 1.0:
                raise PolicyError(f"thresholds.{key} must be in 0..1, got {value}")
        for key, action in self.actions.items():
            if action not in ACTIONS:
                raise PolicyError(f"actions.{key} must be one of {', '.join(ACTIONS)}, got {action!r}")
        for key, cost in self.costs.items():
            if cost.miss < 0 or cost.false_flag < 0:
                raise PolicyError(f"costs.{key}: miss and false_flag must be >= 0")

    # -- per category -------------------------------------------------------------------------------------------
    @property
    def in_force(self) -> tuple[str, ...]:
        """Every category this policy decides: the OpenAI keys in force, then the custom ones."""
        return (*self.categories, *(c.name for c in self.custom_categories))

    def threshold(self, category: str) -> float:
        return self.thresholds.get(category, self.category_threshold)

    def cost(self, category: str) -> ErrorCost:
        return self.costs.get(category, ErrorCost())

    def action(self, category: str) -> str:
        return self.actions.get(category, "flag")

    def accuracy(self, kind: str) -> float:
        return self.evidence_accuracy.get(kind, DEFAULT_EVIDENCE_ACCURACY[kind])

    @property
    def ref(self) -> dict[str, Any]:
        """``{"id", "version"}``: what a result and its trace record as the policy they were decided under."""
        return {"id": self.policy_id, "version": self.policy_version}

    # -- serialised form ----------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModerationPolicy:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise PolicyError(f"unknown policy field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values = dict(values)
        if "categories" in values:
            values["categories"] = tuple(values["categories"])
        if "custom_categories" in values:
            values["custom_categories"] = tuple(CustomCategory(**c) for c in values["custom_categories"])
        if "costs" in values:
            values["costs"] = {k: ErrorCost(**v) for k, v in values["costs"].items()}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("thresholds", "costs", "actions", "evidence_accuracy"):
            out[key] = {k: (asdict(v) if isinstance(v, ErrorCost) else v) for k, v in getattr(self, key).items()}
        out["categories"] = list(self.categories)
        out["custom_categories"] = [asdict(c) for c in self.custom_categories]
        return out
