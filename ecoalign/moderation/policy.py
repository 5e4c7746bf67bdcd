"""The thresholds and per-item budgets of one moderation run, checked when built so a bad value fails early."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


class PolicyError(ValueError):
    """A moderation policy value is out of range; the message names it."""


@dataclass(frozen=True)
class ModerationPolicy:
    """Thresholds and budgets of one moderation run (safety is 0..1, 1 = safe).

    ``hi``/``lo`` bound the band the scan settles alone; ``tau`` is the flag threshold whenever the scan decides
    an uncertain item (and for the judge's safety); ``item_budget`` caps the tokens one item may spend (one judge
    call: estimated prompt plus ``judge_max_tokens``); ``image_token_estimate`` is what one image is assumed to
    cost in a judge prompt.
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

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModerationPolicy:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise PolicyError(f"unknown policy field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
