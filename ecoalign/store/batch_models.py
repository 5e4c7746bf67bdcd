"""Tables of the moderation product: decision traces, uploaded files, and OpenAI-style batches with their items.

Added by migration ``0002``. ``moderation_traces`` is written by the moderation runner (one row per decision);
``files``, ``batches`` and ``batch_items`` are what the Batch API (``POST /v1/files``, ``POST /v1/batches``) keeps:
a batch is an input file of JSONL lines, each line an independent item whose result or error is stored once
(``UNIQUE (batch_id, custom_id)`` and ``UNIQUE (batch_id, line_no)``), so a rerun never redoes a finished item.
Same conventions (``base``) as ``models``: string ids, JSON(B) columns, aware UTC timestamps, CHECKs instead of enums.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ecoalign.store.base import Base, BigIntPK, JSONType, check_in, new_id, utcnow


class BatchStatus(StrEnum):
    """OpenAI's batch lifecycle."""

    VALIDATING = "validating"
    FAILED = "failed"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    EXPIRED = "expired"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


class BatchItemStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FILE_PURPOSES = ("batch", "batch_output", "batch_error", "moderation_input", "moderation_output")


class ModerationTrace(Base):
    """One moderation decision and everything that led to it (segments, scores, thresholds, judge output).

    ``run_id`` groups the decisions of one CLI run or one batch; a list ``input`` gives one row per element
    (``input_index``). ``result`` is the OpenAI result object returned; ``trace`` is what was not returned.
    """

    __tablename__ = "moderation_traces"
    __table_args__ = (
        Index("ix_moderation_traces_run_id_custom_id", "run_id", "custom_id"),
        Index("ix_moderation_traces_tenant_id_created_at", "tenant_id", "created_at"),
        CheckConstraint("tokens >= 0", name="tokens_nonneg"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    trace_id: Mapped[str] = mapped_column(String(32), unique=True)
    run_id: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    custom_id: Mapped[str | None] = mapped_column(String(512))
    input_index: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    flagged: Mapped[bool] = mapped_column(Boolean)
    decision: Mapped[str] = mapped_column(String(64))
    tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    result: Mapped[dict[str, Any]]
    trace: Mapped[dict[str, Any]]
    # the moderation policy the decision was made under (migration 0006; ecoalign.store.policy_models)
    policy_id: Mapped[str | None] = mapped_column(String(40))
    policy_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoredFile(Base):
    """An uploaded or produced file (``/v1/files``). Small files keep their bytes in ``content``; large ones
    live on disk or in object storage at ``path``. Exactly one of the two is set."""

    __tablename__ = "files"
    __table_args__ = (
        CheckConstraint("(content IS NULL) <> (path IS NULL)", name="content_or_path"),
        CheckConstraint("bytes >= 0", name="bytes_nonneg"),
        CheckConstraint(check_in("purpose", FILE_PURPOSES), name="purpose"),
        Index("ix_files_tenant_id_created_at", "tenant_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: f"file-{new_id()}")
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(512))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    content: Mapped[builtins.bytes | None] = mapped_column(LargeBinary)  # ``bytes`` is a column name here
    path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]


class Batch(Base):
    """An OpenAI-style batch: one input file, one endpoint, request counts and the output and error files."""

    __tablename__ = "batches"
    __table_args__ = (
        CheckConstraint(check_in("status", [s.value for s in BatchStatus]), name="status"),
        CheckConstraint(
            "requests_total >= 0 AND requests_completed >= 0 AND requests_failed >= 0 "
            "AND requests_completed + requests_failed <= requests_total",
            name="request_counts",
        ),
        CheckConstraint("tokens_spent >= 0", name="tokens_nonneg"),
        Index("ix_batches_tenant_id_created_at", "tenant_id", "created_at"),
        Index("ix_batches_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: f"batch_{new_id()}")
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    input_file_id: Mapped[str] = mapped_column(ForeignKey("files.id"))
    endpoint: Mapped[str] = mapped_column(String(64))
    completion_window: Mapped[str] = mapped_column(String(16), default="24h")
    status: Mapped[str] = mapped_column(String(16), default=BatchStatus.VALIDATING.value)
    requests_total: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    requests_completed: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    requests_failed: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    tokens_spent: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    token_budget: Mapped[int | None] = mapped_column(BigInteger)
    output_file_id: Mapped[str | None] = mapped_column(ForeignKey("files.id"))
    error_file_id: Mapped[str | None] = mapped_column(ForeignKey("files.id"))
    errors: Mapped[dict[str, Any] | None]  # batch-level errors (e.g. the input file is not JSONL)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    in_progress_at: Mapped[datetime | None]
    finalizing_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    expired_at: Mapped[datetime | None]
    cancelling_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]


class BatchItem(Base):
    """One line of a batch's input file. ``custom_id`` is NULL only for a line that could not be parsed far
    enough to read one; ``(batch_id, line_no)`` identifies every line."""

    __tablename__ = "batch_items"
    __table_args__ = (
        CheckConstraint(check_in("status", [s.value for s in BatchItemStatus]), name="status"),
        CheckConstraint("tokens >= 0 AND attempts >= 0", name="nonneg"),
        UniqueConstraint("batch_id", "custom_id"),
        UniqueConstraint("batch_id", "line_no"),
        Index("ix_batch_items_batch_id_status", "batch_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    custom_id: Mapped[str | None] = mapped_column(String(512))
    line_no: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=BatchItemStatus.PENDING.value)
    result: Mapped[dict[str, Any] | None]  # the output line's ``response`` (status_code, request_id, body)
    error: Mapped[dict[str, Any] | None]  # the error line's ``error`` (code, message, line)
    tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
