"""Finishing a batch: the output file (completed lines) and the error file (failed lines), assembled from the rows
in input order with ids derived from row ids, so assembling twice gives the same files; a second run does nothing.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ecoalign.batches.runtime import BatchRuntime
from ecoalign.store import batches as store
from ecoalign.store.base import utcnow
from ecoalign.store.batch_models import BatchStatus
from ecoalign.store.db import run_in_transaction
from ecoalign.webhooks.outbox import batch_finished

_FINALIZABLE = (BatchStatus.IN_PROGRESS.value, BatchStatus.FINALIZING.value, BatchStatus.CANCELLING.value)
_ASSEMBLING = (BatchStatus.FINALIZING.value, BatchStatus.CANCELLING.value)


def encode(line: dict[str, Any]) -> bytes:
    """One JSONL line: compact, UTF-8 as is."""
    return (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def output_line(item_id: int, custom_id: str | None, result: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": f"batch_req_{item_id}", "custom_id": custom_id, "response": result, "error": None}


def error_line(item_id: int, custom_id: str | None, stored_error: dict[str, Any] | None) -> dict[str, Any]:
    """A failed line's error line: ``code``, ``message`` and ``line`` first, then any other field of the error.

    A line failed at validation keeps its ``custom_id`` inside the error (its column is NULL); it is moved out.
    """
    error = dict(stored_error or {})
    named = error.pop("custom_id", None)
    out_error = {"code": error.pop("code", "error"), "message": error.pop("message", ""),
                 "line": error.pop("line", None), **error}
    return {"id": f"batch_req_{item_id}", "custom_id": custom_id if custom_id is not None else named,
            "response": None, "error": out_error}


def assemble(rows: Iterable[Any]) -> tuple[bytes, bytes]:
    """The output file and the error file of finished rows (``id, custom_id, status, result, error``)."""
    out, err = bytearray(), bytearray()
    for row in rows:
        if row.status == store.COMPLETED:
            out += encode(output_line(row.id, row.custom_id, row.result))
        else:
            err += encode(error_line(row.id, row.custom_id, row.error))
    return bytes(out), bytes(err)


def output_lines(session: Session, batch_id: str) -> tuple[bytes, bytes]:
    """The output file (completed lines) and the error file (failed lines), in input order."""
    return assemble(store.finished_items(session, batch_id))


def finalize_batch(rt: BatchRuntime, batch_id: str) -> str | None:
    """Assemble the output and error files once every line is finished; the batch's final status, or None."""
    if not run_in_transaction(rt.factory, lambda s: _mark_finalizing(s, batch_id)):
        return None
    return run_in_transaction(rt.factory, lambda s: _assemble_and_close(s, batch_id))


def _mark_finalizing(session: Session, batch_id: str) -> bool:
    """Is the batch ready (no line left)? A running one moves to ``finalizing`` here."""
    status = store.lock_status(session, batch_id)
    if status not in _FINALIZABLE or not store.no_line_left(session, batch_id):
        return False
    if status == BatchStatus.IN_PROGRESS.value:
        now = utcnow()
        store.set_batch(session, batch_id, status=BatchStatus.FINALIZING.value, finalizing_at=now, updated_at=now)
    return True


def _assemble_and_close(session: Session, batch_id: str) -> str | None:
    row = store.lock_batch(session, batch_id, "status", "tenant_id", "expired_at")
    if row is None or row.status not in _ASSEMBLING:
        return None
    out, err = output_lines(session, batch_id)
    now = utcnow()
    values: dict[str, Any] = {"updated_at": now, "output_file_id": None, "error_file_id": None}
    for content, purpose, key, suffix in ((out, "batch_output", "output_file_id", "output"),
                                          (err, "batch_error", "error_file_id", "error")):
        if content:
            values[key] = _store_file(session, row.tenant_id, purpose, f"{batch_id}_{suffix}.jsonl", content, now)
    final = _final_status(row.status, row.expired_at)
    values["status"] = final
    if final == BatchStatus.COMPLETED.value:
        values["completed_at"] = now
    elif final == BatchStatus.CANCELLED.value:
        values["cancelled_at"] = now
    store.set_batch(session, batch_id, **values)
    batch_finished(session, batch_id)  # the webhook event, in this transaction
    return final


def _final_status(status: str, expired_at: datetime | None) -> str:
    """``completed`` after finalizing; a cancelling batch ends ``expired`` if its window ran out, else ``cancelled``."""
    if status == BatchStatus.FINALIZING.value:
        return BatchStatus.COMPLETED.value
    return BatchStatus.EXPIRED.value if expired_at is not None else BatchStatus.CANCELLED.value


def _store_file(session: Session, tenant_id: str | None, purpose: str, filename: str, content: bytes,
                now: datetime) -> str:
    file_id = f"file-{uuid.uuid4().hex}"
    store.insert_output_file(session, {
        "id": file_id, "tenant_id": tenant_id, "purpose": purpose, "filename": filename, "bytes": len(content),
        "sha256": hashlib.sha256(content).hexdigest(), "content": content, "created_at": now,
    })
    return file_id
