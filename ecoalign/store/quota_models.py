"""A tenant's rate and concurrency limits (issue 15): one optional row per tenant, added by migration ``0009``.

Every column is optional; ``NULL`` (or no row at all) means that limit is off. Request rates are counted in Redis
(``ecoalign.quotas``); the concurrency limits are counted here, in SQL, from the jobs and batch lines themselves.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ecoalign.store.base import Base, utcnow

LIMIT_COLUMNS = (
    "requests_per_second",
    "chat_requests_per_second",
    "moderation_requests_per_second",
    "max_concurrent_jobs",
    "max_batch_lines_in_flight",
)


class TenantLimits(Base):
    """Requests per second (the chat gateway, moderation and the rest of the API each have their own), jobs
    queued or running at once, and Batch lines not yet finished across the tenant's batches."""

    __tablename__ = "tenant_limits"
    __table_args__ = (
        CheckConstraint(" AND ".join(f"({c} IS NULL OR {c} > 0)" for c in LIMIT_COLUMNS), name="positive"),
    )

    tenant_id: Mapped[str] = mapped_column(String(32), ForeignKey("tenants.id", ondelete="CASCADE"),
                                           primary_key=True)
    requests_per_second: Mapped[int | None] = mapped_column(Integer)
    chat_requests_per_second: Mapped[int | None] = mapped_column(Integer)
    moderation_requests_per_second: Mapped[int | None] = mapped_column(Integer)
    max_concurrent_jobs: Mapped[int | None] = mapped_column(Integer)
    max_batch_lines_in_flight: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
