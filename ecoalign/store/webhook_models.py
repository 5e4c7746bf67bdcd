"""Tables of the webhooks (issue 17, migration ``0006``): a tenant's endpoints, the events (the outbox) and one
delivery row per (event, endpoint).

The event row is written in the transaction of the state change it reports (a job's or a batch's terminal
status), so a committed change always has its event and a rolled-back one never does; its id is derived from
what it reports (``UNIQUE``: the same change cannot be recorded twice) and is the ``webhook-id`` of every attempt,
so receivers can deduplicate. A delivery row is the per-endpoint state of sending it: status, attempts, when to try
next, until when to keep trying, and what the receiver last answered.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ecoalign.store.base import Base, BigIntPK, check_in, new_id, utcnow


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt (or in flight: ``next_attempt_at`` is then the lease)
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # gave up: the retry window ran out


class WebhookEndpoint(Base):
    """Where a tenant wants its events, which ones, and the secret that signs them (needed in clear to sign)."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_tenant_id_created_at", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: f"whep_{new_id()}")
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[Any]]
    description: Mapped[str | None] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    secret_rotated_at: Mapped[datetime | None]
    # After a rotation attempts are signed with both secrets until this time, so a receiver can switch without
    # rejecting anything (Standard Webhooks allows several signatures in one header).
    previous_secret: Mapped[str | None] = mapped_column(String(128))
    previous_secret_expires_at: Mapped[datetime | None]


class WebhookEvent(Base):
    """One state change to report (the outbox): its type and the exact body every attempt sends."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_tenant_id_created_at", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """Sending one event to one endpoint: at least once, retried with backoff until ``give_up_at``."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(check_in("status", [s.value for s in DeliveryStatus]), name="status"),
        CheckConstraint("attempts >= 0", name="attempts_nonneg"),
        UniqueConstraint("event_id", "endpoint_id"),
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime]
    give_up_at: Mapped[datetime | None]  # None: ``ECOALIGN_WEBHOOK_RETRY_WINDOW_S`` after ``created_at``
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]



