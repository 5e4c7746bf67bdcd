"""When to try a failed delivery again: exponential backoff with jitter, for a bounded window.

The n-th retry waits ``min(max_delay, base * 2**(n-1))`` scaled by a random factor in [0.5, 1] ("equal jitter":
receivers that came back are not hit by every sender at once, and the delay still grows). The defaults (30 s base,
4 h cap, a 24 h window) make about a dozen attempts over a day; the settings shrink it for tests.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ecoalign.settings import Settings


@dataclass(frozen=True)
class RetrySchedule:
    base_s: float
    max_delay_s: float
    window_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetrySchedule:
        return cls(settings.webhook_retry_base_s, settings.webhook_retry_max_delay_s, settings.webhook_retry_window_s)

    def delay_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...)."""
        ceiling = min(self.max_delay_s, self.base_s * 2.0 ** max(0, attempt - 1))
        return ceiling * (0.5 + 0.5 * (rng or random).random())
