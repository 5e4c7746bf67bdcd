"""Tables of the audit (migration ``0010``): one ``audit_runs`` row per audit, one ``audit_results`` row per trace.

An audit never touches what it re-scores: the original scores stay on the nodes (``models``), and each run keeps
its own scores, versioned by the evaluator id that produced them (``audit_runs.evaluator``), so the same trace can
carry any number of audits by different evaluators side by side. ``audit_results.trace_id`` is a job id for
stored traces (``trace_kind = 'job'``) or the id an imported line gave (``'import'``); ``position`` is the line
number of an import (1-based) or the trace's order in a job audit, unique within its run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ecoalign.store.base import Base, BigIntPK, check_in, new_id, utcnow

AUDIT_SOURCES = ("import", "jobs")
AUDIT_STATUSES = ("running", "completed", "failed")
AGGREGATES = ("min", "mean")
RESULT_KINDS = ("job", "import")


class AuditRun(Base):
    """One audit: which evaluator, aggregate and τ re-scored which traces, and what it found (``summary``)."""

    __tablename__ = "audit_runs"
    __table_args__ = (
        CheckConstraint(check_in("source", AUDIT_SOURCES), name="source"),
        CheckConstraint(check_in("status", AUDIT_STATUSES), name="status"),
        CheckConstraint(check_in("aggregate", AGGREGATES), name="aggregate"),
        CheckConstraint("tau >= 0 AND tau <= 1", name="tau_range"),
        Index("ix_audit_runs_tenant_id_created_at", "tenant_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    evaluator: Mapped[str] = mapped_column(String(400))
    aggregate: Mapped[str] = mapped_column(String(8))
    tau: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]]  # what was audited: the trace filter, or the import's name
    status: Mapped[str] = mapped_column(String(16), default="running")
    summary: Mapped[dict[str, Any] | None]  # counts, process-blind rate, disagreements (``audit.report``)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class AuditResult(Base):
    """One trace of a run: its new scores (or why it could not be scored) and the original scores beside them."""

    __tablename__ = "audit_results"
    __table_args__ = (
        UniqueConstraint("run_id", "position"),
        CheckConstraint(check_in("trace_kind", RESULT_KINDS), name="trace_kind"),
        Index("ix_audit_results_trace_id", "trace_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("audit_runs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    trace_id: Mapped[str | None] = mapped_column(String(512))
    trace_kind: Mapped[str] = mapped_column(String(16))
    process_blind: Mapped[bool | None] = mapped_column(Boolean)
    path_safety: Mapped[float | None] = mapped_column(Float)
    answer_safety: Mapped[float | None] = mapped_column(Float)
    weakest_step: Mapped[int | None] = mapped_column(Integer)
    step_safeties: Mapped[list[Any] | None]
    original: Mapped[dict[str, Any] | None]  # the stored scores of a job trace, never changed by the audit
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
