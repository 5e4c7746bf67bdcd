"""A tenant's batches as the API creates, reads and lists them (a batch of another tenant is a missing one)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from ecoalign.batches.errors import NotABatchInput, NotFound, UnknownCursor
from ecoalign.batches.files import owned_file, request_line_count
from ecoalign.quotas import check_batch_lines
from ecoalign.store import batches as store
from ecoalign.store.base import utcnow
from ecoalign.store.batch_models import Batch, BatchStatus
from ecoalign.store.pagination import InvalidCursor, Page

WINDOWS = {"24h": timedelta(hours=24)}


@dataclass(frozen=True)
class NewBatch:
    """What a tenant asks for: the input file, the endpoint its lines call, the window and the options."""

    input_file_id: str
    endpoint: str
    completion_window: str
    token_budget: int | None = None
    metadata: dict[str, Any] | None = None


def create_batch(
    session: Session, tenant_id: str, new: NewBatch, *, max_lines_in_flight: int | None = None
) -> Batch:
    """Record the batch (``validating``); the workers' start task does the rest. Raises
    ``quotas.LimitExceeded`` if its lines would take the tenant over ``max_lines_in_flight``."""
    source = owned_file(session, new.input_file_id, tenant_id)
    if source.purpose != "batch":
        raise NotABatchInput(source.id, source.purpose)
    if max_lines_in_flight is not None:
        def count(file_id: str) -> int:
            return request_line_count(session, file_id)

        check_batch_lines(session, tenant_id, count(source.id), max_lines_in_flight, count)
    now = utcnow()
    batch = Batch(
        tenant_id=tenant_id,
        input_file_id=source.id,
        endpoint=new.endpoint,
        completion_window=new.completion_window,
        status=BatchStatus.VALIDATING.value,
        token_budget=new.token_budget,
        metadata_=new.metadata,
        created_at=now,
        updated_at=now,
        expires_at=now + WINDOWS[new.completion_window],
    )
    return store.add_batch(session, batch)


def owned_batch(session: Session, batch_id: str, tenant_id: str) -> Batch:
    """The tenant's batch as it is now; ``NotFound`` if it does not exist or belongs to another tenant."""
    found = store.owned_batch(session, batch_id, tenant_id)
    if found is None:
        raise NotFound("batch")
    return found


def list_batches(session: Session, tenant_id: str, limit: int, after: str | None = None) -> Page[Batch]:
    """A page of the tenant's batches, newest first, after the batch ``after`` (``UnknownCursor`` if unknown)."""
    try:
        return store.batch_page(session, tenant_id, limit, after)
    except InvalidCursor:
        raise UnknownCursor() from None
