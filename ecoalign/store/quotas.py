"""The SQL behind a tenant's concurrency limits: its jobs in flight and its Batch lines not yet finished.

Both are counted from the rows themselves (no counter to drift). A caller that checks a limit and then inserts
holds the tenant's row lock (``lock_tenant``) across both, so two requests of one tenant cannot both pass.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecoalign.store.batch_models import Batch, BatchItem, BatchItemStatus, BatchStatus
from ecoalign.store.models import ACTIVE_JOB_STATUSES, Job, Tenant

# A batch whose lines may still run: being validated, running, or finishing what is running.
ACTIVE_BATCH_STATUSES = (BatchStatus.VALIDATING.value, BatchStatus.IN_PROGRESS.value, BatchStatus.CANCELLING.value)
UNFINISHED_LINE_STATUSES = (BatchItemStatus.PENDING.value, BatchItemStatus.RUNNING.value)


def lock_tenant(session: Session, tenant_id: str) -> None:
    """Serialize the limit checks of one tenant (Postgres row lock; SQLite serializes writers anyway)."""
    session.execute(select(Tenant.id).where(Tenant.id == tenant_id).with_for_update())


def active_jobs(session: Session, tenant_id: str) -> int:
    """The tenant's jobs queued or running."""
    return int(session.scalar(
        select(func.count()).select_from(Job).where(Job.tenant_id == tenant_id, Job.status.in_(ACTIVE_JOB_STATUSES))
    ) or 0)


def unfinished_lines(session: Session, tenant_id: str) -> int:
    """Lines of the tenant's active batches still pending or running."""
    return int(session.scalar(
        select(func.count()).select_from(BatchItem).join(Batch, Batch.id == BatchItem.batch_id)
        .where(Batch.tenant_id == tenant_id, Batch.status.in_(ACTIVE_BATCH_STATUSES),
               BatchItem.status.in_(UNFINISHED_LINE_STATUSES))
    ) or 0)


def validating_input_files(session: Session, tenant_id: str) -> list[str]:
    """The input files of the tenant's batches not yet started (their lines have no rows yet)."""
    return list(session.scalars(
        select(Batch.input_file_id).where(Batch.tenant_id == tenant_id,
                                          Batch.status == BatchStatus.VALIDATING.value)
    ))
