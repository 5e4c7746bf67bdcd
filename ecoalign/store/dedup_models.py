"""Tables of "duplicates decided once" (issue 14, item 4): one row per content already decided in a scope.

Added by migration ``0005``. ``scope`` is the tenant, the policy (id and version, or the digest of the request's
thresholds) and the moderation model: the same content in another scope is decided again. ``UNIQUE (scope,
exact_key)`` is the claim: the first worker to insert the row (``status = 'pending'``) decides and fills in the
result; a racing worker's insert does nothing, and it waits for the row to become ``decided`` and reuses it (a
claim whose ``claim_expires_at`` passed is taken over by a conditional UPDATE). ``dedup_bands`` index the first
image's perceptual hash in 8 bands of 8 bits: two hashes within Hamming distance 7 share a band (pigeonhole), so
a near-duplicate lookup is an index lookup followed by an exact distance check.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ecoalign.store.base import Base, BigIntPK, check_in, utcnow

DEDUP_STATUSES = ("pending", "decided")


class DedupEntry(Base):
    """A content key in a scope: claimed (``pending``) by the worker deciding it, then its decision."""

    __tablename__ = "dedup_entries"
    __table_args__ = (
        UniqueConstraint("scope", "exact_key"),
        CheckConstraint(check_in("status", DEDUP_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    policy_id: Mapped[str | None] = mapped_column(String(200))
    policy_version: Mapped[int | None] = mapped_column(Integer)
    exact_key: Mapped[str] = mapped_column(String(64))
    near_key: Mapped[str | None] = mapped_column(String(64))  # text and image count; None without images
    phashes: Mapped[list[Any] | None]  # each image's perceptual hash, hex
    status: Mapped[str] = mapped_column(String(16), default="pending")
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claim_expires_at: Mapped[datetime | None]
    trace_id: Mapped[str | None] = mapped_column(String(32))  # the original decision's trace
    result: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]


class DedupBand(Base):
    """One 8-bit band of a decided entry's first image hash: the near-duplicate index."""

    __tablename__ = "dedup_bands"
    __table_args__ = (Index("ix_dedup_bands_scope_near_key_band_value", "scope", "near_key", "band", "value"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("dedup_entries.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(String(64))
    near_key: Mapped[str] = mapped_column(String(64))
    band: Mapped[int] = mapped_column(Integer)
    value: Mapped[int] = mapped_column(Integer)
