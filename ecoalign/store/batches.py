"""SQL of the Batch API on ``files``, ``batches`` and ``batch_items``: every statement ``ecoalign.batches`` runs.

Each function is one statement (or one small group under the same lock) inside the caller's transaction; the
decisions (what to claim, when a batch is done, what its output is) stay in ``ecoalign.batches``. Statements that
must serialise on a batch take its row lock (``SELECT ... FOR UPDATE``): finishing lines, finalisation and
cancel all do, so "the last line" is seen by exactly one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, TypeAlias, cast

from sqlalchemy import ColumnElement, Row, Table, and_, func, insert, select, update
from sqlalchemy.orm import Session

from ecoalign.store.batch_models import Batch, BatchItem, BatchItemStatus, BatchStatus, StoredFile
from ecoalign.store.pagination import Page, keyset_page

BATCHES = cast(Table, Batch.__table__)
ITEMS = cast(Table, BatchItem.__table__)
FILES = cast(Table, StoredFile.__table__)
PENDING, RUNNING = BatchItemStatus.PENDING.value, BatchItemStatus.RUNNING.value
COMPLETED, FAILED, CANCELLED = (BatchItemStatus.COMPLETED.value, BatchItemStatus.FAILED.value,
                                BatchItemStatus.CANCELLED.value)
UNFINISHED = (PENDING, RUNNING)
INSERT_CHUNK = 1000
AnyRow: TypeAlias = Row[*tuple[Any, ...]]  # a result row of any columns


def _rowcount(result: Any) -> int:
    return int(cast(Any, result).rowcount)


# -- files --------------------------------------------------------------------------------------------------------
def add_file(session: Session, stored: StoredFile) -> StoredFile:
    """Insert an uploaded file (its id and defaults are filled in by the flush)."""
    session.add(stored)
    session.flush()
    return stored


def owned_file(session: Session, file_id: str, tenant_id: str) -> StoredFile | None:
    return session.scalars(
        select(StoredFile).where(StoredFile.id == file_id, StoredFile.tenant_id == tenant_id)
    ).first()


def file_location(session: Session, file_id: str) -> AnyRow | None:
    """``(content, path)`` of a file: its bytes in the row, or where they live."""
    return session.execute(select(FILES.c.content, FILES.c.path).where(FILES.c.id == file_id)).first()


def file_slice(session: Session, file_id: str, offset: int, length: int) -> bytes:
    """``length`` bytes of a file's content from ``offset`` (``substring`` in the database: not the whole file)."""
    found = session.execute(
        select(func.substring(FILES.c.content, offset + 1, length)).where(FILES.c.id == file_id)
    ).scalar_one()
    return bytes(found or b"")


def insert_output_file(session: Session, values: dict[str, Any]) -> None:
    session.execute(insert(FILES).values(**values))


# -- batches: the API's reads and writes --------------------------------------------------------------------------
def add_batch(session: Session, batch: Batch) -> Batch:
    session.add(batch)
    session.flush()
    return batch


def owned_batch(session: Session, batch_id: str, tenant_id: str) -> Batch | None:
    """The tenant's batch as it is now in the database (``populate_existing``: not a stale identity-map copy)."""
    return session.scalars(
        select(Batch)
        .where(Batch.id == batch_id, Batch.tenant_id == tenant_id)
        .execution_options(populate_existing=True)
    ).first()


def batch_page(session: Session, tenant_id: str, limit: int, after: str | None = None) -> Page[Batch]:
    """The tenant's batches, newest first (``pagination.keyset_page``: ``after`` is the last id of the previous
    page; raises ``pagination.InvalidCursor`` for one that is not the tenant's)."""
    return keyset_page(session, Batch, scope=[Batch.tenant_id == tenant_id], limit=limit, after=after)


# -- batches: state ---------------------------------------------------------------------------------------------
def lock_batch(session: Session, batch_id: str, *columns: str) -> AnyRow | None:
    """The named columns of the batch, under its row lock (``FOR UPDATE``)."""
    return session.execute(
        select(*(BATCHES.c[name] for name in columns)).where(BATCHES.c.id == batch_id).with_for_update()
    ).first()


def lock_status(session: Session, batch_id: str) -> str | None:
    return session.execute(
        select(BATCHES.c.status).where(BATCHES.c.id == batch_id).with_for_update()
    ).scalar_one_or_none()


def read_batch(session: Session, batch_id: str, *columns: str) -> AnyRow | None:
    """The named columns of the batch, without a lock."""
    return session.execute(select(*(BATCHES.c[name] for name in columns)).where(BATCHES.c.id == batch_id)).first()


def set_batch(session: Session, batch_id: str, **values: Any) -> None:
    session.execute(update(BATCHES).where(BATCHES.c.id == batch_id).values(**values))


def count_finished_line(session: Session, batch_id: str, *, completed: bool, tokens: int, now: datetime) -> None:
    """One more line completed (or failed) and its tokens, on the batch row (which takes its lock)."""
    counter = BATCHES.c.requests_completed if completed else BATCHES.c.requests_failed
    session.execute(
        update(BATCHES).where(BATCHES.c.id == batch_id)
        .values({counter: counter + 1, BATCHES.c.tokens_spent: BATCHES.c.tokens_spent + tokens,
                 BATCHES.c.updated_at: now})
    )


def no_line_left(session: Session, batch_id: str) -> bool:
    """Under the batch's lock: is no line of the batch pending or running?"""
    session.execute(select(BATCHES.c.id).where(BATCHES.c.id == batch_id).with_for_update())
    left = session.execute(
        select(func.count()).where(ITEMS.c.batch_id == batch_id, ITEMS.c.status.in_(UNFINISHED))
    ).scalar_one()
    return int(left) == 0


# -- batch items ------------------------------------------------------------------------------------------------
def insert_pending_items(session: Session, rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """Insert pending lines in chunks; ``(item id, line_no)`` of each."""
    inserted: list[tuple[int, int]] = []
    for i in range(0, len(rows), INSERT_CHUNK):
        result = session.execute(insert(ITEMS).returning(ITEMS.c.id, ITEMS.c.line_no), rows[i : i + INSERT_CHUNK])
        inserted += [(int(r.id), int(r.line_no)) for r in result]
    return inserted


def insert_items(session: Session, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), INSERT_CHUNK):
        session.execute(insert(ITEMS), rows[i : i + INSERT_CHUNK])


def unfinished_items(session: Session, batch_id: str) -> dict[int, int]:
    """``line_no -> item id`` of the batch's lines still pending or running."""
    rows = session.execute(
        select(ITEMS.c.line_no, ITEMS.c.id).where(ITEMS.c.batch_id == batch_id, ITEMS.c.status.in_(UNFINISHED))
    ).all()
    return {int(r.line_no): int(r.id) for r in rows}


def _unfinished_item(batch_id: str, item_id: int) -> ColumnElement[bool]:
    return and_(ITEMS.c.id == item_id, ITEMS.c.batch_id == batch_id, ITEMS.c.status.in_(UNFINISHED))


def cancel_item(session: Session, batch_id: str, item_id: int, now: datetime) -> bool:
    """Cancel the line if it is not finished; True if this call cancelled it."""
    done = session.execute(
        update(ITEMS).where(_unfinished_item(batch_id, item_id)).values(status=CANCELLED, finished_at=now)
    )
    return _rowcount(done) == 1


def claim_item(session: Session, batch_id: str, item_id: int) -> AnyRow | None:
    """Take an unfinished line (``running``, attempts + 1): ``(attempts, custom_id, line_no)``, or None."""
    return session.execute(
        update(ITEMS).where(_unfinished_item(batch_id, item_id))
        .values(status=RUNNING, attempts=ITEMS.c.attempts + 1)
        .returning(ITEMS.c.attempts, ITEMS.c.custom_id, ITEMS.c.line_no)
    ).first()


def finish_item(session: Session, item_id: int, attempt: int, values: dict[str, Any]) -> bool:
    """Record a line's end if ``attempt`` still holds it (running, same attempts); True if recorded."""
    done = session.execute(
        update(ITEMS).where(ITEMS.c.id == item_id, ITEMS.c.status == RUNNING, ITEMS.c.attempts == attempt)
        .values(**values)
    )
    return _rowcount(done) == 1


def cancel_pending_items(session: Session, batch_id: str, now: datetime) -> None:
    session.execute(
        update(ITEMS).where(ITEMS.c.batch_id == batch_id, ITEMS.c.status == PENDING)
        .values(status=CANCELLED, finished_at=now)
    )


def count_running_items(session: Session, batch_id: str) -> int:
    found = session.execute(
        select(func.count()).where(ITEMS.c.batch_id == batch_id, ITEMS.c.status == RUNNING)
    ).scalar_one()
    return int(found)


def finished_items(session: Session, batch_id: str) -> Iterator[AnyRow]:
    """The batch's completed and failed lines in input order, streamed (``id, custom_id, status, result, error``)."""
    return iter(session.execute(
        select(ITEMS.c.id, ITEMS.c.custom_id, ITEMS.c.status, ITEMS.c.result, ITEMS.c.error)
        .where(ITEMS.c.batch_id == batch_id, ITEMS.c.status.in_((COMPLETED, FAILED)))
        .order_by(ITEMS.c.line_no)
        .execution_options(yield_per=500)
    ))


# -- what the reaper looks for ------------------------------------------------------------------------------------
def validating_since(session: Session, before: datetime, limit: int) -> list[str]:
    """Batches still ``validating`` with no change since ``before`` (their start message was lost)."""
    return list(session.scalars(
        select(BATCHES.c.id).where(BATCHES.c.status == BatchStatus.VALIDATING.value,
                                   BATCHES.c.updated_at < before).limit(limit)
    ))


def past_their_window(session: Session, now: datetime, limit: int) -> list[str]:
    return list(session.scalars(
        select(BATCHES.c.id).where(BATCHES.c.status == BatchStatus.IN_PROGRESS.value,
                                   BATCHES.c.expires_at < now).limit(limit)
    ))


IDLE_STATUSES: Sequence[str] = (BatchStatus.IN_PROGRESS.value, BatchStatus.FINALIZING.value,
                                BatchStatus.CANCELLING.value)


def idle_since(session: Session, before: datetime, limit: int) -> list[AnyRow]:
    """Running (or finishing) batches with no change since ``before``, oldest first
    (``id, status, endpoint, input_file_id, updated_at``)."""
    return list(session.execute(
        select(BATCHES.c.id, BATCHES.c.status, BATCHES.c.endpoint, BATCHES.c.input_file_id, BATCHES.c.updated_at)
        .where(BATCHES.c.status.in_(IDLE_STATUSES), BATCHES.c.updated_at < before)
        .order_by(BATCHES.c.updated_at).limit(limit)
    ).all())
