"""Tables of the human review queue (issue 14, item 3): review tasks and the reviewers' decisions.

Added by migration ``0005``. A ``review_tasks`` row is one item a human must settle (the machine could not: its
budget ended while the item was still uncertain, or the policy's action is ``review``); it keeps the item itself
(text and images, so the reviewer sees what the machine saw) and the machine's decision, never changed afterwards.
``review_decisions`` holds every reviewer verdict as its own row (the history), so the machine's decision in
``moderation_traces`` and ``review_tasks`` is never overwritten. A task is leased to one reviewer at a time
(``lease_owner``, ``lease_expires_at``: conditional UPDATEs in ``ecoalign.store.reviews``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ecoalign.store.base import Base, check_in, new_id, utcnow


class ReviewStatus(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    DECIDED = "decided"


VERDICTS = ("allow", "flag", "block")


class ReviewTask(Base):
    """One item waiting for (or settled by) a human reviewer, with the machine's decision as it was made."""

    __tablename__ = "review_tasks"
    __table_args__ = (
        CheckConstraint(check_in("status", [s.value for s in ReviewStatus]), name="status"),
        CheckConstraint("claims >= 0", name="claims_nonneg"),
        Index("ix_review_tasks_tenant_id_status_created_at", "tenant_id", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: f"rev-{new_id()}")
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    trace_id: Mapped[str] = mapped_column(String(32), unique=True)  # one task per machine decision
    run_id: Mapped[str | None] = mapped_column(String(64))
    custom_id: Mapped[str | None] = mapped_column(String(512))
    policy_id: Mapped[str | None] = mapped_column(Text)
    policy_version: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(64))  # the machine decision that sent it here
    status: Mapped[str] = mapped_column(String(16), default=ReviewStatus.PENDING.value)
    category_tags: Mapped[str] = mapped_column(Text, default=",")  # ",violence,illicit,": the machine's suspicions
    machine_flagged: Mapped[bool] = mapped_column(Boolean)
    machine_result: Mapped[dict[str, Any]]  # the OpenAI result object the machine returned
    item: Mapped[dict[str, Any]]  # {"text": ..., "images": [{"media_type", "data_url"}]}
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    claims: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]


class ReviewDecision(Base):
    """One reviewer's verdict on a task: appended, never updated (the task's history)."""

    __tablename__ = "review_decisions"
    __table_args__ = (
        CheckConstraint(check_in("verdict", VERDICTS), name="verdict"),
        Index("ix_review_decisions_task_id_created_at", "task_id", "created_at"),
        Index("ix_review_decisions_tenant_id_created_at", "tenant_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: f"rvd-{new_id()}")
    task_id: Mapped[str] = mapped_column(ForeignKey("review_tasks.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    trace_id: Mapped[str] = mapped_column(String(32))
    reviewer: Mapped[str] = mapped_column(String(64))  # the API key id that held the lease
    verdict: Mapped[str] = mapped_column(String(16))
    categories: Mapped[list[Any]]
    note: Mapped[str | None] = mapped_column(Text)
    machine_flagged: Mapped[bool] = mapped_column(Boolean)
    seconds_to_decision: Mapped[float] = mapped_column(Float)  # from the task's creation
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
