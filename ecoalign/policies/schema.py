"""The JSON (or YAML) document of a moderation policy, validated with pydantic: what ``POST /v1/policies`` takes,
what a stored version holds, and what ``ecoalign moderate --policy-file`` reads. ``PolicyDocument.to_policy`` turns
it into the one runtime policy, ``ecoalign.moderation.policy.ModerationPolicy``, whose own checks (keys of
``thresholds``/``costs``/``actions`` must be categories in force, ...) run here too, so a bad document is refused
when it is written, naming the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml  # type: ignore[import-untyped]
from pydantic import ConfigDict, Field, StringConstraints, ValidationError, model_validator

from ecoalign.categories import MODERATION_CATEGORIES
from ecoalign.chat_schema import RequestModel, Text
from ecoalign.moderation.policy import (
    DEFAULT_EVIDENCE_ACCURACY,
    CustomCategory,
    ErrorCost,
    ModerationPolicy,
    PolicyError,
)

OpenAICategory = Literal[MODERATION_CATEGORIES]  # type: ignore[valid-type]
CategoryName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,62}$")]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
EvidenceKind = Literal["judge_text", "judge_images", "second_judge"]


class _Doc(RequestModel):
    """The request models' rules (unknown fields refused, strict types: no bool for a number), immutable."""

    model_config = ConfigDict(frozen=True)


class CustomCategoryIn(_Doc):
    """A category of the tenant's own: the judge scores it from ``description``."""

    name: CategoryName = Field(description="lower-case letters, digits and hyphens, e.g. 'crypto-scam'")
    description: Text = Field(min_length=10, max_length=2000, description="what the category covers, for the judge")


class CostIn(_Doc):
    miss: float = Field(1.0, ge=0.0, le=1e6, description="cost of passing a harmful item")
    false_flag: float = Field(1.0, ge=0.0, le=1e6, description="cost of flagging a harmless item")


class BudgetsIn(_Doc):
    item: int = Field(2000, ge=0, le=10**9, description="judge tokens one item may spend")
    run: int | None = Field(None, ge=0, le=10**12, description="judge tokens one run (request, batch) may spend")


class BandIn(_Doc):
    """The fixed band of ``escalation: band``: escalate ``lo < safety < hi``; ``tau`` flags a scan-decided item."""

    hi: Unit = 0.9
    lo: Unit = 0.1
    tau: Unit = 0.5


class PolicyDocument(_Doc):
    """A moderation policy: categories in force, per-category thresholds, error costs and actions, escalation."""

    categories: list[OpenAICategory] = Field(
        default_factory=lambda: list(MODERATION_CATEGORIES), description="OpenAI moderation categories in force"
    )
    custom_categories: list[CustomCategoryIn] = Field(default_factory=list, max_length=32)
    thresholds: dict[str, Unit] = Field(default_factory=dict, description="per category: flag at or over (0.5)")
    costs: dict[str, CostIn] = Field(default_factory=dict, description="per category: the cost of each error")
    actions: dict[str, Literal["flag", "review", "block"]] = Field(default_factory=dict, description="per category")
    budgets: BudgetsIn = Field(default_factory=BudgetsIn)
    escalation: Literal["band", "value"] = "band"
    token_price: float = Field(0.1, ge=0.0, le=1e6, description="cost units per 1000 judge tokens")
    band: BandIn = Field(default_factory=BandIn)
    evidence_accuracy: dict[EvidenceKind, Annotated[float, Field(ge=0.5, le=1.0)]] = Field(
        default_factory=lambda: dict(DEFAULT_EVIDENCE_ACCURACY),  # type: ignore[arg-type]
        description="accuracy model of each evidence (used by escalation: value)",
    )

    @model_validator(mode="after")
    def _coherent(self) -> PolicyDocument:
        if not self.categories and not self.custom_categories:
            raise ValueError("a policy needs at least one category in force")
        try:
            self.to_policy("check", 1)
        except PolicyError as exc:
            raise ValueError(str(exc)) from None
        return self

    def to_policy(self, policy_id: str, version: int) -> ModerationPolicy:
        """The runtime policy this document stands for, named by id and version."""
        return ModerationPolicy(
            hi=self.band.hi,
            lo=self.band.lo,
            tau=self.band.tau,
            item_budget=self.budgets.item,
            run_budget=self.budgets.run,
            policy_id=policy_id,
            policy_version=version,
            categories=tuple(self.categories),
            custom_categories=tuple(CustomCategory(c.name, c.description) for c in self.custom_categories),
            thresholds=dict(self.thresholds),
            costs={k: ErrorCost(v.miss, v.false_flag) for k, v in self.costs.items()},
            actions=dict(self.actions),
            escalation=self.escalation,
            token_price=self.token_price,
            evidence_accuracy={**DEFAULT_EVIDENCE_ACCURACY, **{str(k): v for k, v in self.evidence_accuracy.items()}},
        )


class PolicyFile(PolicyDocument):
    """A policy document on disk (``--policy-file``): optionally named, with the version its results record."""

    id: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = None
    version: int = Field(1, ge=1)


class PolicyFileError(ValueError):
    """A policy file that cannot be read or does not validate; the message names the file, line or field."""


def load_policy_file(path: Path) -> ModerationPolicy:
    """The policy a JSON or YAML file holds; its results record ``id`` (default ``file:<name>``) and ``version``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyFileError(f"{path}: cannot read it ({exc})") from None
    try:
        data: Any = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise PolicyFileError(f"{path}: line {exc.lineno}: malformed JSON ({exc.msg})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise PolicyFileError(f"{path}: {where}malformed YAML ({exc})") from None
    if not isinstance(data, dict):
        raise PolicyFileError(f"{path}: a policy file holds one object (mapping)")
    try:
        doc = PolicyFile.model_validate(data)
    except ValidationError as exc:
        raise PolicyFileError(f"{path}: {describe(exc)}") from None
    return doc.to_policy(doc.id or f"file:{path.stem}"[:40], doc.version)


def describe(exc: ValidationError) -> str:
    """A validation error as one line per problem, each naming its field."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'policy'}: {e['msg']}" for e in exc.errors(include_url=False)
    )
