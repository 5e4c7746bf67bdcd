"""Per-tenant rate and concurrency limits (issue 15): what is checked, and the one error they all raise.

* **Requests per second**, counted per tenant in Redis by the ``limits`` library (a moving window, so a burst at
  a second's edge cannot double the rate). The chat gateway, moderation and the rest of the API are counted
  separately (``Family``), each against its own limit, so a moderation flood cannot starve the tenant's chat.
* **Concurrent jobs**: the tenant's jobs queued or running, counted in SQL under the tenant's row lock when a
  job is submitted (``POST /v1/jobs``, the chat gateway); an idempotent replay is never refused.
* **Batch lines in flight**: the lines of the tenant's batches not yet finished plus those of the new batch,
  checked when a batch is created.

A limit left unset (``NULL``) is off. Each refusal is a ``LimitExceeded`` with a stable ``code`` and a
``retry_after_s`` hint; the API answers it with 429 and ``Retry-After`` (api/errors.py). If Redis cannot be
reached the request-rate check lets the request through and logs it (the limiter protects capacity; refusing
everything while the broker is down would add an outage to an outage), see docs/security.md.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy.orm import Session

from ecoalign.store import quotas as store
from ecoalign.store.quota_models import TenantLimits

log = logging.getLogger(__name__)

# What a full concurrency limit tells the client to wait before trying again: a hint, since no clock resets it.
CONCURRENCY_RETRY_AFTER_S = 5


class Family(StrEnum):
    """Which request-rate counter a request goes to."""

    API = "api"
    CHAT = "chat"
    MODERATION = "moderation"


@dataclass(frozen=True)
class TenantQuota:
    """A tenant's limits; ``None`` is no limit."""

    requests_per_second: int | None = None
    chat_requests_per_second: int | None = None
    moderation_requests_per_second: int | None = None
    max_concurrent_jobs: int | None = None
    max_batch_lines_in_flight: int | None = None

    @classmethod
    def from_row(cls, row: TenantLimits | None) -> TenantQuota:
        if row is None:
            return cls()
        return cls(row.requests_per_second, row.chat_requests_per_second, row.moderation_requests_per_second,
                   row.max_concurrent_jobs, row.max_batch_lines_in_flight)

    def per_second(self, family: Family) -> int | None:
        return {
            Family.API: self.requests_per_second,
            Family.CHAT: self.chat_requests_per_second,
            Family.MODERATION: self.moderation_requests_per_second,
        }[family]


class LimitExceeded(Exception):
    """A tenant's limit refused this request: ``code`` says which, ``retry_after_s`` when to try again."""

    def __init__(self, code: str, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_s = max(1, retry_after_s)


class RequestRateLimiter:
    """Requests per second per (tenant, family), in Redis (``storage_url``: the broker's Redis by default)."""

    def __init__(self, storage_url: str) -> None:
        self._storage = storage_from_string(storage_url, wrap_exceptions=True)
        self._limiter = MovingWindowRateLimiter(self._storage)

    def check(self, tenant_id: str, family: Family, per_second: int | None) -> None:
        """Count this request; raise ``LimitExceeded`` if it is over the tenant's rate for ``family``."""
        if per_second is None:
            return
        item = RateLimitItemPerSecond(per_second)
        try:
            if self._limiter.hit(item, tenant_id, family.value):
                return
            reset_at = self._limiter.get_window_stats(item, tenant_id, family.value).reset_time
        except StorageError as exc:
            log.warning("rate limit of tenant %s not checked (%s): Redis unavailable", tenant_id, exc)
            return
        raise LimitExceeded(
            "rate_limited",
            f"over the tenant's limit of {per_second} {family.value} requests per second",
            math.ceil(max(reset_at - time.time(), 0.0)),
        )

    def reset(self) -> None:
        """Forget every count (tests)."""
        self._storage.reset()


def check_concurrent_jobs(session: Session, tenant_id: str, limit: int | None) -> None:
    """Refuse a new job while the tenant has ``limit`` jobs queued or running (call in the submitting
    transaction: the tenant's row stays locked until the new job is inserted)."""
    if limit is None:
        return
    store.lock_tenant(session, tenant_id)
    running = store.active_jobs(session, tenant_id)
    if running >= limit:
        raise LimitExceeded(
            "too_many_concurrent_jobs",
            f"the tenant has {running} jobs queued or running, its limit is {limit}",
            CONCURRENCY_RETRY_AFTER_S,
        )


def check_batch_lines(
    session: Session, tenant_id: str, new_lines: int, limit: int | None, file_lines: Callable[[str], int]
) -> None:
    """Refuse a batch whose ``new_lines`` would take the tenant's unfinished Batch lines over ``limit``.
    ``file_lines(file_id)`` counts the lines of a batch not started yet (its lines have no rows)."""
    if limit is None:
        return
    store.lock_tenant(session, tenant_id)
    in_flight = store.unfinished_lines(session, tenant_id)
    in_flight += sum(file_lines(f) for f in store.validating_input_files(session, tenant_id))
    if in_flight + new_lines > limit:
        raise LimitExceeded(
            "too_many_batch_lines",
            f"the tenant has {in_flight} Batch lines in flight; {new_lines} more would pass its limit of {limit}",
            CONCURRENCY_RETRY_AFTER_S,
        )
