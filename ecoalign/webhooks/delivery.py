"""Sending: the dispatcher takes due deliveries and sends one task each; the task makes one attempt.

At least once: a delivery is taken with a lease (``next_attempt_at`` pushed ahead), so a task message that is lost
makes it due again when the lease ends; an attempt's outcome is written only under the attempt that made it. A 2xx
answer delivers it; anything else (another status, a refused target, a connection error, a timeout) schedules the
next attempt after the backoff, until the retry window ends and it is ``failed``. Each attempt is signed afresh
(its own ``webhook-timestamp``, the endpoint's current secret) under the same ``webhook-id``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.queue.names import WEBHOOK_DELIVER_TASK
from ecoalign.settings import Settings
from ecoalign.store import webhooks as store
from ecoalign.store.base import utcnow
from ecoalign.store.db import run_in_transaction
from ecoalign.webhooks.backoff import RetrySchedule
from ecoalign.webhooks.signing import body_bytes, signed_headers
from ecoalign.webhooks.targets import TargetRefused, check_target, post

log = logging.getLogger(__name__)
DISPATCH_LIMIT = 200
MAX_ERROR_CHARS = 500
Sender = Callable[..., object]  # (task name, *args) -> sent


def dispatch_due(factory: sessionmaker[Session], settings: Settings, send: Sender) -> int:
    """Take the due deliveries and send a delivery task for each; how many were taken."""
    lease_s = settings.webhook_timeout_s * 2 + settings.webhook_dispatch_interval_s + 5
    claims = run_in_transaction(factory, lambda s: store.claim_due(s, utcnow(), lease_s, DISPATCH_LIMIT))
    for delivery_id, attempt in claims:
        try:
            send(WEBHOOK_DELIVER_TASK, delivery_id, attempt)
        except Exception:  # the lease runs out and the next sweep takes it again
            log.warning("could not send webhook delivery %s; retried after its lease", delivery_id, exc_info=True)
    return len(claims)


def attempt_once(out: store.Outgoing, settings: Settings) -> tuple[int | None, str | None]:
    """POST the signed event once: ``(status code or None, error or None)``; no error means delivered."""
    now = utcnow()
    body = body_bytes(out.payload)
    try:
        target = check_target(out.url, loopback=settings.webhook_allow_loopback)
        response = post(target, body, signed_headers(out.secrets, out.event_id, now, body),
                        timeout_s=settings.webhook_timeout_s)
    except TargetRefused as exc:
        return None, str(exc)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}"


def outcome_values(out: store.Outgoing, settings: Settings, code: int | None, error: str | None) -> dict[str, Any]:
    """The delivery row's new values after an attempt."""
    now = utcnow()
    values: dict[str, Any] = {"last_status_code": code, "last_error": error, "last_attempt_at": now}
    if error is None:
        return {**values, "status": store.DELIVERED, "delivered_at": now}
    schedule = RetrySchedule.from_settings(settings)
    give_up = out.give_up_at or out.created_at + timedelta(seconds=schedule.window_s)
    retry_at = now + timedelta(seconds=schedule.delay_s(out.attempt))
    if retry_at > give_up:
        return {**values, "status": store.FAILED}
    return {**values, "next_attempt_at": retry_at}


def deliver(factory: sessionmaker[Session], settings: Settings, delivery_id: int, attempt: int) -> str:
    """One attempt of one delivery: ``delivered``, ``retry``, ``failed`` or ``not ours`` (another attempt holds
    it, or it was delivered or deleted meanwhile)."""
    out = run_in_transaction(factory, lambda s: store.outgoing(s, delivery_id, attempt))
    if out is None:
        return "not ours"
    code, error = attempt_once(out, settings)
    values = outcome_values(out, settings, code, error)
    if not run_in_transaction(factory, lambda s: store.record_attempt(s, delivery_id, attempt, values)):
        return "not ours"
    if error is not None:
        log.info("webhook delivery %s attempt %s failed: %s", delivery_id, attempt, error)
    return str(values.get("status", "retry"))
