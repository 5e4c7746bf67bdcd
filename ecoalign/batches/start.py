"""Starting a batch: read its input file once, check every line's header, insert one ``batch_items`` row per
non-blank line, and say which lines to send.

Lines that cannot be used at all (bad JSON, no ``custom_id``, a ``custom_id`` already used on an earlier line) are
failed right here, each with its own error; a line whose content is bad fails in its own task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ecoalign.batches.files import LineRef, input_bytes, pending_refs, scan_lines
from ecoalign.batches.output import finalize_batch
from ecoalign.batches.runtime import BatchRuntime
from ecoalign.batches.sending import send_lines
from ecoalign.moderation.lines import LineError, parse_header
from ecoalign.store import batches as store
from ecoalign.store.base import utcnow
from ecoalign.store.batch_models import BatchStatus
from ecoalign.store.db import run_in_transaction
from ecoalign.webhooks.outbox import batch_finished


@dataclass
class Started:
    """What to do after the start: send ``lines`` (to ``endpoint``'s task), then finalize if ``finalize``."""

    endpoint: str = ""
    lines: list[LineRef] = field(default_factory=list)
    finalize: bool = False


@dataclass
class _Validated:
    """The rows a start inserts: pending lines with their places in the file, and lines failed on the spot."""

    total: int = 0
    pending: list[dict[str, Any]] = field(default_factory=list)
    places: dict[int, tuple[int, int]] = field(default_factory=dict)
    failed: list[dict[str, Any]] = field(default_factory=list)


def start_batch(rt: BatchRuntime, batch_id: str) -> Started:
    """Validate the batch's lines and insert their rows (one transaction), or say what to re-send on redelivery."""

    def run(session: Session) -> Started:
        batch = store.lock_batch(session, batch_id, "status", "endpoint", "input_file_id")
        if batch is None:
            return Started()
        if batch.status == BatchStatus.CANCELLING.value:
            return Started(batch.endpoint, finalize=True)
        if batch.status == BatchStatus.IN_PROGRESS.value:  # a redelivered start: re-send what is not finished
            refs = pending_refs(session, batch_id, batch.input_file_id, rt.options().max_line_bytes)
            return Started(batch.endpoint, refs)
        if batch.status != BatchStatus.VALIDATING.value:
            return Started(batch.endpoint)
        return _validate(session, rt, batch_id, batch.endpoint, input_bytes(session, batch.input_file_id))

    return run_in_transaction(rt.factory, run)


def _validate(session: Session, rt: BatchRuntime, batch_id: str, endpoint: str, content: bytes) -> Started:
    now = utcnow()
    found = _check_lines(rt, batch_id, content, now)
    if found is None:
        return _fail_batch(session, batch_id, endpoint, "too_many_lines",
                           f"the input file has more than {rt.settings.max_batch_lines} lines")
    if found.total == 0:
        return _fail_batch(session, batch_id, endpoint, "empty_file", "the input file has no request lines")
    refs = [LineRef(item_id, *found.places[line_no])
            for item_id, line_no in store.insert_pending_items(session, found.pending)]
    store.insert_items(session, found.failed)
    store.set_batch(session, batch_id, status=BatchStatus.IN_PROGRESS.value, requests_total=found.total,
                    requests_completed=0, requests_failed=len(found.failed), in_progress_at=now, updated_at=now)
    refs.sort(key=lambda r: r.offset)
    return Started(endpoint, refs, finalize=not refs)


def _check_lines(rt: BatchRuntime, batch_id: str, content: bytes, now: datetime) -> _Validated | None:
    """Every non-blank line's header, as a pending row or a failed one; None if there are too many lines."""
    options = rt.options()
    out = _Validated()
    first_use: dict[str, int] = {}
    for line_no, offset, length, raw in scan_lines(content, options.max_line_bytes):
        header = parse_header(raw, line_no, options)
        if header is None:
            continue
        out.total += 1
        if out.total > rt.settings.max_batch_lines:
            return None
        if isinstance(header, LineError):
            out.failed.append(_failed_row(batch_id, line_no, header.code, header.message, now))
        elif header.custom_id in first_use:
            earlier = first_use[header.custom_id]
            message = f"line {line_no}: custom_id {header.custom_id!r} was already used on line {earlier}"
            out.failed.append(
                _failed_row(batch_id, line_no, "duplicate_custom_id", message, now, named=header.custom_id)
            )
        else:
            first_use[header.custom_id] = line_no
            out.pending.append({"batch_id": batch_id, "custom_id": header.custom_id, "line_no": line_no,
                                "status": store.PENDING, "created_at": now})
            out.places[line_no] = (offset, length)
    return out


def _failed_row(batch_id: str, line_no: int, code: str, message: str, now: datetime, *,
                named: str | None = None) -> dict[str, Any]:
    """A line failed at validation. Its ``custom_id`` column stays NULL (a duplicate cannot hold the unique value);
    a duplicate's id is kept in the error, for its error line."""
    error: dict[str, Any] = {"code": code, "message": message, "line": line_no}
    if named is not None:
        error["custom_id"] = named
    return {"batch_id": batch_id, "custom_id": None, "line_no": line_no, "status": store.FAILED, "error": error,
            "created_at": now, "finished_at": now}


def _fail_batch(session: Session, batch_id: str, endpoint: str, code: str, message: str) -> Started:
    now = utcnow()
    errors = {"object": "list", "data": [{"code": code, "message": message, "param": "input_file_id", "line": None}]}
    store.set_batch(session, batch_id, status=BatchStatus.FAILED.value, failed_at=now, updated_at=now, errors=errors)
    batch_finished(session, batch_id)  # the webhook event, in this transaction
    return Started(endpoint)


def begin_batch(rt: BatchRuntime, batch_id: str) -> int:
    """The start task's work: validate, send one message per usable line, finalize a batch with none. How many
    lines were sent."""
    started = start_batch(rt, batch_id)
    sent = send_lines(rt, batch_id, started.endpoint, started.lines)
    if started.finalize:
        finalize_batch(rt, batch_id)
    return sent
