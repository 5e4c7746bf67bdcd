"""SQL of the webhooks on ``webhook_endpoints``, ``webhook_events`` and ``webhook_deliveries``: every statement
``ecoalign.webhooks`` runs, and ``record_event``, the outbox write the store's own state changes call (a job's
terminal status in ``repository.finish_job``) and ``ecoalign.batches`` calls for a batch's.

None of them commits: ``record_event`` joins the transaction of the change it reports. Deliveries are taken with a
conditional ``UPDATE`` that bumps ``attempts`` and sets ``next_attempt_at`` to a lease, and their outcome is
written only under that attempt, so a duplicated task message or a second dispatcher changes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session

from ecoalign.store.base import utcnow
from ecoalign.store.db import dialect_insert
from ecoalign.store.pagination import Page, keyset_page
from ecoalign.store.webhook_models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent

ENDPOINTS = cast(Table, WebhookEndpoint.__table__)
EVENTS = cast(Table, WebhookEvent.__table__)
DELIVERIES = cast(Table, WebhookDelivery.__table__)
PENDING, DELIVERED, FAILED = (DeliveryStatus.PENDING.value, DeliveryStatus.DELIVERED.value,
                              DeliveryStatus.FAILED.value)


def event_id(event_type: str, subject_id: str) -> str:
    """The event's id (``webhook-id``): derived from what it reports, so the same change is one event."""
    return "msg_" + hashlib.sha256(f"{event_type}:{subject_id}".encode()).hexdigest()[:32]


def record_event(
    session: Session,
    tenant_id: str | None,
    event_type: str,
    subject_id: str,
    data: dict[str, Any],
) -> str | None:
    """The outbox write, in the caller's transaction: the event and one pending delivery per endpoint of the
    tenant that subscribes to ``event_type``. Nothing is written when no endpoint wants it (or no tenant).
    Returns the event id, or None. A second call for the same change inserts nothing (deterministic id)."""
    if tenant_id is None:
        return None
    endpoints = [
        row.id for row in session.execute(
            select(ENDPOINTS.c.id, ENDPOINTS.c.events).where(ENDPOINTS.c.tenant_id == tenant_id)
        ) if event_type in (row.events or [])
    ]
    if not endpoints:
        return None
    now = utcnow()
    eid = event_id(event_type, subject_id)
    payload = {"type": event_type, "timestamp": now.isoformat().replace("+00:00", "Z"), "data": data}
    session.execute(
        dialect_insert(session, EVENTS)
        .values(id=eid, tenant_id=tenant_id, type=event_type, payload=payload, created_at=now)
        .on_conflict_do_nothing()
    )
    session.execute(
        dialect_insert(session, DELIVERIES).on_conflict_do_nothing(),
        [{"event_id": eid, "endpoint_id": endpoint, "status": PENDING, "attempts": 0, "next_attempt_at": now,
          "created_at": now} for endpoint in endpoints],
    )
    return eid


# -- endpoints ------------------------------------------------------------------------------------------------------
def add_endpoint(session: Session, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    session.add(endpoint)
    session.flush()
    return endpoint


def owned_endpoint(session: Session, endpoint_id: str, tenant_id: str) -> WebhookEndpoint | None:
    """The tenant's endpoint (None for another tenant's too: ids are not disclosed)."""
    return session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.tenant_id == tenant_id)
        .execution_options(populate_existing=True)
    ).first()


def endpoint_page(session: Session, tenant_id: str, limit: int, after: str | None = None) -> Page[WebhookEndpoint]:
    return keyset_page(session, WebhookEndpoint, scope=[WebhookEndpoint.tenant_id == tenant_id], limit=limit,
                       after=after)


def count_endpoints(session: Session, tenant_id: str) -> int:
    return len(session.scalars(select(ENDPOINTS.c.id).where(ENDPOINTS.c.tenant_id == tenant_id)).all())


def delete_endpoint(session: Session, endpoint_id: str, tenant_id: str) -> bool:
    """Delete the endpoint and its deliveries (cascade); False if the tenant has no such endpoint."""
    done = session.execute(
        delete(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id, ENDPOINTS.c.tenant_id == tenant_id)
    )
    return int(cast(Any, done).rowcount) == 1


def set_secret(session: Session, endpoint_id: str, secret: str, now: datetime, grace_s: float) -> None:
    """The new secret; the old one keeps signing (beside it) for ``grace_s``."""
    session.execute(update(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id).values(
        previous_secret=ENDPOINTS.c.secret if grace_s > 0 else None,
        previous_secret_expires_at=now + timedelta(seconds=grace_s) if grace_s > 0 else None,
        secret=secret, secret_rotated_at=now))


# -- deliveries -----------------------------------------------------------------------------------------------------
def delivery_page(session: Session, endpoint_id: str, limit: int, after: str | None = None) -> Page[Any]:
    """The endpoint's deliveries, newest first, with their event's type (``(WebhookDelivery, type)`` rows)."""
    query_after = int(after) if after is not None and after.isdigit() else None
    query = (
        select(WebhookDelivery, EVENTS.c.type)
        .join(EVENTS, EVENTS.c.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit + 1)
        .execution_options(populate_existing=True)
    )
    if query_after is not None:
        query = query.where(WebhookDelivery.id < query_after)
    rows = list(session.execute(query).all())
    return Page(rows[:limit], len(rows) > limit)


def owned_delivery(session: Session, endpoint_id: str, delivery_id: int) -> WebhookDelivery | None:
    return session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id)
        .execution_options(populate_existing=True)
    ).first()


def reopen_delivery(session: Session, delivery_id: int, now: datetime, window_s: float) -> None:
    """A manual redeliver: pending again, due now, with a new retry window (attempts keep counting)."""
    session.execute(
        update(DELIVERIES).where(DELIVERIES.c.id == delivery_id)
        .values(status=PENDING, next_attempt_at=now, give_up_at=now + timedelta(seconds=window_s))
    )


def claim_due(session: Session, now: datetime, lease_s: float, limit: int) -> list[tuple[int, int]]:
    """Take up to ``limit`` pending deliveries that are due: ``attempts + 1`` and ``next_attempt_at`` pushed to a
    lease (a lost task message makes the delivery due again then). ``(delivery id, attempt)`` of each."""
    due = (
        select(DELIVERIES.c.id)
        .where(DELIVERIES.c.status == PENDING, DELIVERIES.c.next_attempt_at <= now)
        .order_by(DELIVERIES.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(session.scalars(due))
    if not ids:
        return []
    rows = session.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.id.in_(ids), DELIVERIES.c.status == PENDING)
        .values(attempts=DELIVERIES.c.attempts + 1, next_attempt_at=now + timedelta(seconds=lease_s))
        .returning(DELIVERIES.c.id, DELIVERIES.c.attempts)
    ).all()
    return [(int(r.id), int(r.attempts)) for r in rows]


@dataclass(frozen=True)
class Outgoing:
    """What one attempt sends: where, signed with which secret, the event's id and body."""

    delivery_id: int
    attempt: int
    url: str
    secrets: tuple[str, ...]  # the current secret, then the previous one while its grace lasts
    event_id: str
    payload: dict[str, Any]
    give_up_at: datetime | None
    created_at: datetime


def outgoing(session: Session, delivery_id: int, attempt: int) -> Outgoing | None:
    """The attempt's message if ``attempt`` still holds the delivery (pending, same attempts), else None."""
    row: Any = session.execute(
        select(DELIVERIES.c.id, DELIVERIES.c.attempts, DELIVERIES.c.give_up_at, DELIVERIES.c.created_at,
               ENDPOINTS.c.url, ENDPOINTS.c.secret, ENDPOINTS.c.previous_secret,
               ENDPOINTS.c.previous_secret_expires_at, EVENTS.c.id.label("event_id"), EVENTS.c.payload)
        .join(ENDPOINTS, ENDPOINTS.c.id == DELIVERIES.c.endpoint_id)
        .join(EVENTS, EVENTS.c.id == DELIVERIES.c.event_id)
        .where(DELIVERIES.c.id == delivery_id, DELIVERIES.c.status == PENDING, DELIVERIES.c.attempts == attempt)
    ).first()
    if row is None:
        return None
    secrets: tuple[str, ...] = (row.secret,)
    if row.previous_secret and row.previous_secret_expires_at and row.previous_secret_expires_at > utcnow():
        secrets += (row.previous_secret,)
    return Outgoing(int(row.id), int(row.attempts), row.url, secrets, row.event_id, dict(row.payload),
                    row.give_up_at, row.created_at)


def record_attempt(session: Session, delivery_id: int, attempt: int, values: dict[str, Any]) -> bool:
    """Write an attempt's outcome if it still holds the delivery; True if written."""
    done = session.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.id == delivery_id, DELIVERIES.c.status == PENDING, DELIVERIES.c.attempts == attempt)
        .values(**values)
    )
    return int(cast(Any, done).rowcount) == 1
