"""Tables of tenant moderation policies: a policy, its immutable numbered versions, and each tenant's default.

Added by migration ``0007``. A version's ``document`` is never updated (no statement in
``ecoalign.store.policies`` writes one twice; the primary key ``(policy_id, version)`` makes two writers racing for
the same number fail rather than both win); a new document is a new version. ``tenant_policy_defaults`` names
the policy a tenant's requests get when they choose none (its latest version at decision time).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ecoalign.store.base import Base, JSONType, utcnow


class Policy(Base):
    """A tenant's named policy; ``latest_version`` is the number of its newest version."""

    __tablename__ = "policies"
    __table_args__ = (
        Index("ix_policies_tenant_id_created_at", "tenant_id", "created_at"),
        CheckConstraint("latest_version >= 1", name="latest_version_pos"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    latest_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PolicyVersion(Base):
    """One immutable version of a policy: its validated document (``ecoalign.policies.schema.PolicyDocument``)."""

    __tablename__ = "policy_versions"
    __table_args__ = (CheckConstraint("version >= 1", name="version_pos"),)

    policy_id: Mapped[str] = mapped_column(ForeignKey("policies.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    document: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TenantPolicyDefault(Base):
    """The policy a tenant's moderation uses when a request names none."""

    __tablename__ = "tenant_policy_defaults"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    policy_id: Mapped[str] = mapped_column(ForeignKey("policies.id", ondelete="CASCADE"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
