"""The relational schema: tenants and their keys, jobs, the thought graph (nodes, edges) and the budget ledger.

One schema for both back ends: SQLite (the embedded default, a file) and PostgreSQL (psycopg 3). Everything
here is portable SQL: JSON columns (JSONB on Postgres), timestamps stored in UTC, string ids, CHECK constraints
that both engines enforce. The schema itself is created only by the Alembic migrations in ``migrations/``; these
models are the typed view of it, and a test proves the two agree (autogenerate finds no difference).

``files`` and ``batches``/``batch_items`` belong to another part of the product and are added by their own
migrations (``batch_models``); nothing here depends on them. Shared types and ``Base`` live in ``base``.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ecoalign.store.base import Base, BigIntPK, JSONType, check_in, new_id, utcnow


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


ACTIVE_JOB_STATUSES = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


class Decision(StrEnum):
    ANSWERED = "answered"
    REFUSED = "refused"


class LedgerKind(StrEnum):
    """What a ledger entry paid for."""

    GENERATE = "generate"
    EVALUATE = "evaluate"
    ROLLOUT = "rollout"
    SCAN = "scan"
    REFUSAL = "refusal"


class LedgerState(StrEnum):
    RESERVED = "reserved"
    SETTLED = "settled"
    REFUNDED = "refunded"


class Tenant(Base):
    """A customer. Token budgets are optional; ``NULL`` means unlimited. Counters move only via the ledger."""

    __tablename__ = "tenants"
    __table_args__ = (
        CheckConstraint(
            "token_budget_total IS NULL OR tokens_spent + tokens_reserved <= token_budget_total",
            name="budget_total",
        ),
        CheckConstraint("tokens_spent >= 0 AND tokens_reserved >= 0", name="tokens_nonneg"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    token_budget_total: Mapped[int | None] = mapped_column(BigInteger)
    token_budget_daily: Mapped[int | None] = mapped_column(BigInteger)
    tokens_spent: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    tokens_reserved: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TenantDailyUsage(Base):
    """A tenant's tokens per UTC day, against ``tenants.token_budget_daily`` (checked by the ledger's UPDATE)."""

    __tablename__ = "tenant_daily_usage"
    __table_args__ = (CheckConstraint("spent >= 0 AND reserved >= 0", name="nonneg"),)

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    spent: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    reserved: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class ApiKey(Base):
    """An API key. Only the sha256 of the secret is stored; ``prefix`` lets a user recognise the key."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class Job(Base):
    """One request through a strategy, with its result and its budget counters.

    ``budget_spent + budget_reserved <= budget_total`` is a CHECK: no code path, however buggy or concurrent,
    can commit a job that has spent or promised more than its budget.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(check_in("status", [s.value for s in JobStatus]), name="status"),
        CheckConstraint(check_in("decision", [d.value for d in Decision], nullable=True), name="decision"),
        CheckConstraint("budget_total >= 0", name="budget_total_nonneg"),
        CheckConstraint("budget_spent >= 0", name="budget_spent_nonneg"),
        CheckConstraint("budget_reserved >= 0", name="budget_reserved_nonneg"),
        CheckConstraint("budget_spent + budget_reserved <= budget_total", name="budget_within_total"),
        UniqueConstraint("tenant_id", "idempotency_key"),
        # Postgres and SQLite treat NULLs as distinct in a unique constraint: anonymous (tenant-less, local)
        # jobs get their idempotency from this partial index instead.
        Index(
            "uq_jobs_idempotency_key_anonymous",
            "idempotency_key",
            unique=True,
            postgresql_where=text("tenant_id IS NULL"),
            sqlite_where=text("tenant_id IS NULL"),
        ),
        Index("ix_jobs_tenant_id_created_at", "tenant_id", "created_at"),
        Index("ix_jobs_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id"))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value)
    decision: Mapped[str | None] = mapped_column(String(16))
    strategy: Mapped[str] = mapped_column(String(64))
    request: Mapped[dict[str, Any]]
    request_fingerprint: Mapped[str] = mapped_column(String(64), default="")
    policy: Mapped[dict[str, Any]]
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    scan: Mapped[dict[str, Any] | None]
    response: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)  # why the decision (the search's stop or refusal cause)
    path: Mapped[list[Any] | None]
    path_safety: Mapped[float | None] = mapped_column(Float)
    utility: Mapped[float | None] = mapped_column(Float)
    model_calls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    budget_total: Mapped[int] = mapped_column(BigInteger)
    budget_spent: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    budget_reserved: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Bumped by every status transition (repository) and by ORM flushes: a writer that loaded the job earlier
    # gets StaleDataError instead of silently overwriting. Ledger counter updates do not bump it.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy reads this class attribute


class NodeRow(Base):
    """One node of a job's thought graph (``ecoalign.engine.graph.Node`` plus what the runtime needs).

    ``id`` is ``graph.node_id(job_id, kind, parents, ordinal)``: it hashes the job id in, so it is unique
    across jobs, and a redelivered planning step produces the same id (insert is ON CONFLICT DO NOTHING).
    """

    __tablename__ = "nodes"
    __table_args__ = (
        CheckConstraint(check_in("status", ["pending", "running", "done", "pruned", "failed"]), name="status"),
        CheckConstraint(check_in("kind", ["root", "thought", "answer", "refusal"]), name="kind"),
        Index("ix_nodes_job_id_status", "job_id", "status"),
        Index("ix_nodes_status_lease_expires_at", "status", "lease_expires_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    depth: Mapped[int] = mapped_column(Integer, default=0)
    ordinal: Mapped[int] = mapped_column(Integer, default=0)
    action: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    text: Mapped[str] = mapped_column(Text, default="")
    prompt: Mapped[list[Any] | None]
    model: Mapped[str] = mapped_column(String(200), default="")
    evaluator: Mapped[str] = mapped_column(String(200), default="")
    safety: Mapped[float | None] = mapped_column(Float)
    utility: Mapped[float | None] = mapped_column(Float)
    categories: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    tokens_prompt: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    tokens_completion: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    tokens_eval: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    est_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    prune_reason: Mapped[str | None] = mapped_column(Text)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)  # why the search planned it (a refusal's cause)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # every claim (delivery)
    # Attempts that ended in an exception raised while running the node (migration 0008); the others ended in a
    # crash (lease expired, worker lost) or are running. Poison limits: ``settings.max_node_attempts`` for these,
    # ``settings.max_node_crashes`` for ``attempts - failures``.
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None] = mapped_column(index=True)  # /metrics node latency (migration 0003)
    # Stamped from a sequence by a trigger on every insert and update (Postgres, migration 0004): what changed in
    # a graph since a worker's copy of it (``reads.GraphCache``). Always 0 on SQLite.
    rev: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # OpenTelemetry GenAI semantic-convention attributes of the call (gen_ai.request.model, ...).
    gen_ai: Mapped[dict[str, Any] | None]


class Edge(Base):
    """Parent → child. A node with several parents (a merge) has several edges."""

    __tablename__ = "edges"
    __table_args__ = (Index("ix_edges_job_id", "job_id"), Index("ix_edges_child_id", "child_id"))

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    parent_id: Mapped[str] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True)


class LedgerEntry(Base):
    """One reservation of tokens for one model call, and what it finally cost.

    ``(job_id, node_id, kind)`` is unique: it is the idempotency key of the call. ``node_id`` is a string key,
    not a foreign key (a node id, or a job-level key such as ``"scan"``). ``budget_day`` is the UTC day whose
    tenant daily counter holds this entry (set when ``tenant_id`` is).
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("job_id", "node_id", "kind"),
        CheckConstraint(check_in("state", [s.value for s in LedgerState]), name="state"),
        CheckConstraint("reserved_tokens >= 0 AND spent_tokens >= 0 AND overrun_tokens >= 0", name="tokens_nonneg"),
        Index("ix_ledger_entries_job_id_state", "job_id", "state"),
        Index("ix_ledger_entries_tenant_id_budget_day", "tenant_id", "budget_day"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    node_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=LedgerState.RESERVED.value)
    reserved_tokens: Mapped[int] = mapped_column(BigInteger)
    spent_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    overrun_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id"))
    budget_day: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    settled_at: Mapped[datetime | None]

