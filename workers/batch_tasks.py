"""Batch API tasks (``/v1/batches``): validation, **one task per input line**, finalisation, and a reaper.

Queues (routes in ``workers.app``): start, finalize and the reaper on the control queue, moderation lines on the
score queue, chat lines on the model queue, so existing worker pools serve batches without a new queue.

Flow: ``batch_start`` reads the input file once, inserts one ``batch_items`` row per non-blank line and sends one
message per usable line (``batch_moderation_line`` on the score queue: the scan is CPU-bound;
``batch_chat_line`` on the model queue: the job waits on the model). Lines that cannot be used at all (bad JSON, no
``custom_id``, a ``custom_id`` already used on an earlier line) are failed right there, each with its own error;
a line whose content is bad (unknown ``url``, bad base64, ...) fails in its own task. Nothing else is affected.

Why it is safe under at-least-once delivery (no chords, Postgres is the truth):

* **Claim**: ``UPDATE batch_items SET status='running', attempts=attempts+1 WHERE status IN ('pending','running')``
  returns the attempt number, which fences the result: the line is finished by ``UPDATE ... WHERE
  status='running' AND attempts=:attempt``, so of two deliveries only the last claimer can record it, and a line
  that is finished is never claimed again (``UNIQUE (batch_id, custom_id)``: a rerun never redoes a finished
  ``custom_id``). A line delivered more than ``ECOALIGN_BATCH_MAX_ATTEMPTS`` times fails as poison.
* **Counts** move in the same transaction as the line's status (``requests_completed``/``requests_failed`` on
  the ``batches`` row, whose row lock serialises finishing lines); after that update the transaction counts the
  lines still pending or running: the one that sees zero is the last, and it finalizes.
* **Finalize** assembles the output and error files from the rows (ordered by line, ids derived from row ids, so
  doing it twice gives the same files) and sets ``completed`` in one transaction; a second run does nothing.
* **Reaper** (beat): re-sends the start of a batch stuck in ``validating``, re-sends the unfinished lines of a
  batch with no progress for ``ECOALIGN_BATCH_STALL_S`` (longer than the task time limit, so nothing is still
  running), finalizes a batch whose lines are all done, and expires batches past their completion window.

Chat lines (``/v1/chat/completions``) run an EcoAlign job **in-process inside the line's task** (the same steps
as the Celery pipeline, on a small thread pool): the job is created with the idempotency key
``batch-line:<item id>``, so a redelivered line resumes the same job instead of starting another. If the job
cannot be advanced here (a node still leased by a dead attempt), the task waits for it (the workers' reaper hands
such nodes to the Celery pipeline) up to the task's time budget.

Tokens: judge escalations of moderation lines are charged to the tenant budget (``TenantRunBudget``) and capped
per line (``ECOALIGN_MODERATION_ITEM_BUDGET``) and per batch (``token_budget``, checked at each line's start);
chat lines are charged through the job ledger like any job.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from celery.signals import worker_process_shutdown
from pydantic import ValidationError
from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.moderation.factory import ModerationEngine
from ecoalign.moderation.inputs import ParseOptions
from ecoalign.moderation.lines import LineError, LineHeader, build_task, parse_header
from ecoalign.moderation.policy import ModerationPolicy
from ecoalign.moderation.tenant_budget import TenantRunBudget
from ecoalign.moderation.traces import trace_rows as traced
from ecoalign.queue.app import app
from ecoalign.queue.names import (
    BATCH_CHAT_LINE_TASK,
    BATCH_FINALIZE_TASK,
    BATCH_MODERATION_LINE_TASK,
    BATCH_REAP_TASK,
    BATCH_START_TASK,
)
from ecoalign.runtime.batches import request_cancel
from ecoalign.settings import Settings
from ecoalign.store.base import utcnow
from ecoalign.store.batch_models import Batch, BatchItem, BatchItemStatus, BatchStatus, StoredFile
from ecoalign.store.db import run_in_transaction
from ecoalign.store.moderation_traces import store_traces
from workers import process

log = logging.getLogger(__name__)

START_TASK = BATCH_START_TASK
MODERATION_LINE_TASK = BATCH_MODERATION_LINE_TASK
CHAT_LINE_TASK = BATCH_CHAT_LINE_TASK
FINALIZE_TASK = BATCH_FINALIZE_TASK
REAP_TASK = BATCH_REAP_TASK

BATCHES = cast(Table, Batch.__table__)
ITEMS = cast(Table, BatchItem.__table__)
FILES = cast(Table, StoredFile.__table__)
PENDING, RUNNING = BatchItemStatus.PENDING.value, BatchItemStatus.RUNNING.value
COMPLETED, FAILED, CANCELLED = (BatchItemStatus.COMPLETED.value, BatchItemStatus.FAILED.value,
                                BatchItemStatus.CANCELLED.value)
UNFINISHED = (PENDING, RUNNING)
MODERATIONS, CHAT = "/v1/moderations", "/v1/chat/completions"
INSERT_CHUNK = 1000
NO_BASE_DIR = Path("/nonexistent/ecoalign-batch")  # the simple form's file paths are never read on a server
_URL_PREFIXES = ("data:", "https://", "http://")


# -- what a task needs --------------------------------------------------------------------------------------------
@dataclass
class Runtime:
    """Database, settings and adapters for batch work: per worker process (``current()``) or given by a test."""

    factory: sessionmaker[Session]
    settings: Settings
    engine: ModerationEngine
    services: Callable[[], Any]  # the chat model and evaluators (chat lines), built on first use
    remote_fetch: Callable[[str], Any] | None = None
    chat_workers: int = 4

    def options(self) -> ParseOptions:
        s = self.settings
        return ParseOptions(base_dir=NO_BASE_DIR, max_image_bytes=s.max_image_bytes, max_images=s.max_images,
                            max_text_chars=s.max_text_chars, remote_fetch=self.remote_fetch)


_RUNTIME: dict[int, Runtime] = {}
_RUNTIME_LOCK = threading.Lock()


def remote_fetcher_for(settings: Settings) -> Callable[[str], Any] | None:
    if not settings.allow_remote_images:
        return None
    from ecoalign.remote_images import pinned_fetcher

    return pinned_fetcher(settings.max_image_bytes)


def current() -> Runtime:
    """This worker process's runtime (built once per pid: a forked child never reuses its parent's)."""
    pid = os.getpid()
    with _RUNTIME_LOCK:
        found = _RUNTIME.get(pid)
        if found is None:
            settings = process.settings()
            found = Runtime(process.db(), settings, ModerationEngine(settings), process.services,
                            remote_fetcher_for(settings))
            _RUNTIME.clear()
            _RUNTIME[pid] = found
        return found


@worker_process_shutdown.connect
def _close_runtime(**_: Any) -> None:
    with _RUNTIME_LOCK:
        for runtime in _RUNTIME.values():
            runtime.engine.close()
        _RUNTIME.clear()


# -- validation (batch_start) -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LineRef:
    """Where one pending line is: its row and its bytes in the input file (the message carries no content)."""

    item_id: int
    offset: int
    length: int


@dataclass
class Started:
    endpoint: str = ""
    lines: list[LineRef] = field(default_factory=list)
    finalize: bool = False


def scan_lines(content: bytes, max_line_bytes: int) -> Iterator[tuple[int, int, int, bytes | None]]:
    """``(line_no, offset, length, raw)`` for every line (1-based); ``raw`` is None for a line over the cap."""
    stream = io.BytesIO(content)
    line_no = offset = 0
    while True:
        raw = stream.readline(max_line_bytes + 1)
        if not raw:
            return
        line_no += 1
        start, size = offset, len(raw)
        if size > max_line_bytes and not raw.endswith(b"\n"):
            while not raw.endswith(b"\n"):
                raw = stream.readline(1 << 20)
                if not raw:
                    break
                size += len(raw)
            offset += size
            yield line_no, start, size, None
            continue
        offset += size
        yield line_no, start, size, raw


def _input_bytes(session: Session, file_id: str) -> bytes:
    row = session.execute(select(FILES.c.content, FILES.c.path).where(FILES.c.id == file_id)).first()
    if row is None:
        return b""
    return bytes(row.content) if row.content is not None else Path(row.path).read_bytes()


def start_batch(rt: Runtime, batch_id: str) -> Started:
    """Validate the batch's lines and insert their rows (one transaction), or say what to re-send on redelivery."""

    def run(session: Session) -> Started:
        batch = session.execute(
            select(BATCHES.c.status, BATCHES.c.endpoint, BATCHES.c.input_file_id).where(BATCHES.c.id == batch_id)
            .with_for_update()
        ).first()
        if batch is None:
            return Started()
        if batch.status == BatchStatus.CANCELLING.value:
            return Started(batch.endpoint, finalize=True)
        if batch.status == BatchStatus.IN_PROGRESS.value:  # a redelivered start: re-send what is not finished
            return Started(batch.endpoint, pending_refs(session, batch_id, batch.input_file_id, rt.options()))
        if batch.status != BatchStatus.VALIDATING.value:
            return Started(batch.endpoint)
        return _validate(session, rt, batch_id, batch.endpoint, _input_bytes(session, batch.input_file_id))

    return run_in_transaction(rt.factory, run)


def _validate(session: Session, rt: Runtime, batch_id: str, endpoint: str, content: bytes) -> Started:
    options = rt.options()
    now = utcnow()
    pending: list[dict[str, Any]] = []
    places: dict[int, tuple[int, int]] = {}
    failed: list[dict[str, Any]] = []
    first_use: dict[str, int] = {}
    total = 0
    for line_no, offset, length, raw in scan_lines(content, options.max_line_bytes):
        header = parse_header(raw, line_no, options)
        if header is None:
            continue
        total += 1
        if total > rt.settings.max_batch_lines:
            return _fail_batch(session, batch_id, endpoint, "too_many_lines",
                               f"the input file has more than {rt.settings.max_batch_lines} lines")
        if isinstance(header, LineError):
            failed.append(_failed_row(batch_id, line_no, header.code, header.message, now))
        elif header.custom_id in first_use:
            earlier = first_use[header.custom_id]
            message = f"line {line_no}: custom_id {header.custom_id!r} was already used on line {earlier}"
            failed.append(
                _failed_row(batch_id, line_no, "duplicate_custom_id", message, now, named=header.custom_id)
            )
        else:
            first_use[header.custom_id] = line_no
            pending.append({"batch_id": batch_id, "custom_id": header.custom_id, "line_no": line_no,
                            "status": PENDING, "created_at": now})
            places[line_no] = (offset, length)
    if total == 0:
        return _fail_batch(session, batch_id, endpoint, "empty_file", "the input file has no request lines")
    refs: list[LineRef] = []
    for i in range(0, len(pending), INSERT_CHUNK):
        rows = session.execute(insert(ITEMS).returning(ITEMS.c.id, ITEMS.c.line_no), pending[i : i + INSERT_CHUNK])
        refs += [LineRef(int(r.id), *places[int(r.line_no)]) for r in rows]
    for i in range(0, len(failed), INSERT_CHUNK):
        session.execute(insert(ITEMS), failed[i : i + INSERT_CHUNK])
    session.execute(
        update(BATCHES).where(BATCHES.c.id == batch_id).values(
            status=BatchStatus.IN_PROGRESS.value, requests_total=total, requests_completed=0,
            requests_failed=len(failed), in_progress_at=now, updated_at=now,
        )
    )
    refs.sort(key=lambda r: r.offset)
    return Started(endpoint, refs, finalize=not refs)


def _failed_row(batch_id: str, line_no: int, code: str, message: str, now: Any, *,
                named: str | None = None) -> dict[str, Any]:
    """A line failed at validation. Its ``custom_id`` column stays NULL (a duplicate cannot hold the unique value);
    a duplicate's id is kept in the error, for its error line."""
    error: dict[str, Any] = {"code": code, "message": message, "line": line_no}
    if named is not None:
        error["custom_id"] = named
    return {"batch_id": batch_id, "custom_id": None, "line_no": line_no, "status": FAILED, "error": error,
            "created_at": now, "finished_at": now}


def _fail_batch(session: Session, batch_id: str, endpoint: str, code: str, message: str) -> Started:
    now = utcnow()
    session.execute(
        update(BATCHES).where(BATCHES.c.id == batch_id).values(
            status=BatchStatus.FAILED.value, failed_at=now, updated_at=now,
            errors={"object": "list", "data": [{"code": code, "message": message, "param": "input_file_id",
                                                "line": None}]},
        )
    )
    return Started(endpoint)


def pending_refs(session: Session, batch_id: str, file_id: str, options: ParseOptions) -> list[LineRef]:
    """The unfinished lines of a batch with their places in the file (one pass over the file)."""
    items = dict(session.execute(
        select(ITEMS.c.line_no, ITEMS.c.id).where(ITEMS.c.batch_id == batch_id, ITEMS.c.status.in_(UNFINISHED))
    ).all())
    if not items:
        return []
    refs = []
    for line_no, offset, length, _ in scan_lines(_input_bytes(session, file_id), options.max_line_bytes):
        if line_no in items:
            refs.append(LineRef(int(items[line_no]), offset, length))
    return refs


# -- one line -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claimed:
    batch_id: str
    item_id: int
    attempt: int
    custom_id: str
    line_no: int
    endpoint: str
    tenant_id: str | None
    input_file_id: str
    budget_left: int | None


@dataclass
class LineOutcome:
    """What a line produced: a result (the output line's ``response``) or an error, its tokens and traces."""

    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    tokens: int = 0
    traces: list[dict[str, Any]] = field(default_factory=list)


def claim_line(rt: Runtime, batch_id: str, item_id: int) -> Claimed | None:
    """Take the line (attempt + 1), or None: finished, cancelled, or its batch is not running.

    In a cancelling batch an unstarted (or abandoned) line is cancelled here instead.
    """

    def run(session: Session) -> tuple[Claimed | None, bool]:
        batch = session.execute(
            select(BATCHES.c.status, BATCHES.c.endpoint, BATCHES.c.tenant_id, BATCHES.c.input_file_id,
                   BATCHES.c.token_budget, BATCHES.c.tokens_spent).where(BATCHES.c.id == batch_id)
        ).first()
        if batch is None:
            return None, False
        if batch.status == BatchStatus.CANCELLING.value:
            done = session.execute(
                update(ITEMS).where(ITEMS.c.id == item_id, ITEMS.c.batch_id == batch_id,
                                    ITEMS.c.status.in_(UNFINISHED))
                .values(status=CANCELLED, finished_at=utcnow())
            )
            return None, cast(Any, done).rowcount == 1 and _last_one(session, batch_id)
        if batch.status != BatchStatus.IN_PROGRESS.value:
            return None, False
        row = session.execute(
            update(ITEMS).where(ITEMS.c.id == item_id, ITEMS.c.batch_id == batch_id, ITEMS.c.status.in_(UNFINISHED))
            .values(status=RUNNING, attempts=ITEMS.c.attempts + 1)
            .returning(ITEMS.c.attempts, ITEMS.c.custom_id, ITEMS.c.line_no)
        ).first()
        if row is None:
            return None, False
        left = None if batch.token_budget is None else max(0, int(batch.token_budget) - int(batch.tokens_spent))
        return Claimed(batch_id, item_id, int(row.attempts), str(row.custom_id), int(row.line_no), batch.endpoint,
                       batch.tenant_id, batch.input_file_id, left), False

    claimed, finalize = run_in_transaction(rt.factory, run)
    if finalize:
        finalize_batch(rt, batch_id)
    return claimed


def load_line(rt: Runtime, file_id: str, offset: int, length: int) -> bytes:
    """Just this line's bytes (``substring`` in the database: the file is not read whole)."""
    return run_in_transaction(
        rt.factory,
        lambda s: bytes(s.execute(
            select(func.substring(FILES.c.content, offset + 1, length)).where(FILES.c.id == file_id)
        ).scalar_one() or b""),
    )


def _error(claimed: Claimed, code: str, message: str, **extra: Any) -> LineOutcome:
    return LineOutcome(error={"code": code, "message": f"line {claimed.line_no}: {message}", "line": claimed.line_no,
                              **extra})


def _header(rt: Runtime, claimed: Claimed, raw: bytes) -> LineHeader | LineOutcome:
    header = parse_header(raw, claimed.line_no, rt.options())
    if isinstance(header, LineHeader):
        return header
    if isinstance(header, LineError):
        return LineOutcome(error={"code": header.code, "message": header.message, "line": claimed.line_no})
    return _error(claimed, "invalid_line", "the line is empty")


def moderation_line(rt: Runtime, claimed: Claimed, raw: bytes) -> LineOutcome:
    """A ``/v1/moderations`` line: scan, escalate within the line's and the batch's budget, record traces."""
    header = _header(rt, claimed, raw)
    if isinstance(header, LineOutcome):
        return header
    obj = header.obj
    if not any(k in obj for k in ("method", "url", "body")):  # the CLI's simple form: URLs only, never a path
        refs = obj.get("images", [])
        refs = [refs] if isinstance(refs, str) else refs
        if isinstance(refs, list) and any(not isinstance(r, str) or not r.startswith(_URL_PREFIXES) for r in refs):
            return _error(claimed, "invalid_image", "a batch line's images must be data: or https URLs (no paths)")
    built = build_task(header, rt.options())
    if isinstance(built, LineError):
        return LineOutcome(error={"code": built.code, "message": built.message, "line": claimed.line_no})
    budget = TenantRunBudget(claimed.budget_left, rt.factory, claimed.tenant_id)
    moderator = rt.engine.moderator(ModerationPolicy(item_budget=rt.settings.moderation_item_budget), budget)
    results = moderator.moderate_many(list(built.requests))
    body = {"id": f"modr-{uuid.uuid4().hex}", "model": moderator.model_id, "results": [r.to_openai() for r in results]}
    return LineOutcome(
        result={"status_code": 200, "request_id": f"req_{uuid.uuid4().hex}", "body": body},
        tokens=sum(r.tokens for r in results),
        traces=traced(claimed.batch_id, claimed.custom_id, claimed.tenant_id, results),
    )


def chat_line(rt: Runtime, claimed: Claimed, raw: bytes, *, wait_s: float) -> LineOutcome:
    """A ``/v1/chat/completions`` line: an EcoAlign job run in-process, answered as a ``chat.completion``."""
    from ecoalign.chat_schema import ChatCompletionCreate, parse_chat
    from ecoalign.runtime import submission
    from ecoalign.runtime.completions import job_error, render_completion
    from ecoalign.runtime.inprocess import StuckJob, run_job
    from ecoalign.runtime.requests import RequestError, field_loc
    from ecoalign.store import repository

    header = _header(rt, claimed, raw)
    if isinstance(header, LineOutcome):
        return header
    obj = header.obj
    if obj.get("method", "POST") != "POST":
        return _error(claimed, "invalid_method", f"method must be POST, got {obj.get('method')!r}")
    if obj.get("url") != CHAT:
        return _error(claimed, "invalid_url", f"url must be {CHAT}, got {obj.get('url')!r}")
    if not isinstance(obj.get("body"), dict):
        return _error(claimed, "invalid_body", "body must be an object")
    try:
        body = ChatCompletionCreate.model_validate(obj["body"])
        request, policy, strategy = parse_chat(body, rt.settings, rt.remote_fetch)
    except ValidationError as exc:
        issues = "; ".join(f"body.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        return _error(claimed, "invalid_request", issues)
    except RequestError as exc:  # as the API's 413 / 422: the code, or the field's location and the message
        if exc.too_large:
            return _error(claimed, "payload_too_large", str(exc))
        return _error(claimed, "invalid_request", f"{'.'.join(map(str, field_loc(exc.field)))}: {exc}")
    tenant_id, key = claimed.tenant_id or "", f"batch-line:{claimed.item_id}"
    try:
        view, _ = run_in_transaction(
            rt.factory, lambda s: submission.submit_tenant_job(s, request, policy, strategy, tenant_id, key)
        )
    except submission.TenantBudgetExhausted as exc:  # the tenant's budget cannot pay for a minimal job
        return _error(claimed, exc.code, exc.message)
    except submission.IdempotencyConflict as exc:
        return _error(claimed, "idempotency_conflict", str(exc))
    job_id = view["id"]
    try:
        run_job(rt.factory, rt.services(), job_id, workers=rt.chat_workers, lease_s=rt.settings.node_lease_s)
    except StuckJob:
        log.info("batch line %s: job %s waits on a node held elsewhere; waiting for it", claimed.item_id, job_id)
    deadline = time.monotonic() + wait_s
    while True:
        job = run_in_transaction(rt.factory, lambda s: repository.get_job(s, job_id))
        if job is not None and job.status in ("succeeded", "failed", "cancelled"):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} of batch line {claimed.item_id} did not finish in {wait_s:g} s")
        time.sleep(0.2)
    if job.status != "succeeded":
        _, code, detail = job_error(job)
        return _error(claimed, code, detail, job_id=job_id)
    completion = run_in_transaction(rt.factory, lambda s: render_completion(s, job, body.model))
    return LineOutcome(
        result={"status_code": 200, "request_id": f"req_{uuid.uuid4().hex}", "body": completion},
        tokens=int(completion["usage"]["total_tokens"]),
    )


def finish_line(rt: Runtime, claimed: Claimed, outcome: LineOutcome) -> bool:
    """Record the line's result or error if this attempt still holds it; True if it was the batch's last line."""
    status = COMPLETED if outcome.error is None else FAILED

    def run(session: Session) -> bool:
        now = utcnow()
        done = session.execute(
            update(ITEMS)
            .where(ITEMS.c.id == claimed.item_id, ITEMS.c.status == RUNNING, ITEMS.c.attempts == claimed.attempt)
            .values(status=status, result=outcome.result, error=outcome.error, tokens=outcome.tokens,
                    finished_at=now)
        )
        if cast(Any, done).rowcount != 1:
            return False  # a later attempt holds the line, or it was finished meanwhile
        if status == COMPLETED:
            store_traces(session, outcome.traces)
        counter = BATCHES.c.requests_completed if status == COMPLETED else BATCHES.c.requests_failed
        session.execute(
            update(BATCHES).where(BATCHES.c.id == claimed.batch_id)
            .values({counter: counter + 1, BATCHES.c.tokens_spent: BATCHES.c.tokens_spent + outcome.tokens,
                     BATCHES.c.updated_at: now})
        )
        return _last_one(session, claimed.batch_id)

    return run_in_transaction(rt.factory, run)


def _last_one(session: Session, batch_id: str) -> bool:
    """Called after this transaction updated the batch row (so it holds its lock): no line left unfinished?"""
    session.execute(select(BATCHES.c.id).where(BATCHES.c.id == batch_id).with_for_update())
    left = session.execute(
        select(func.count()).where(ITEMS.c.batch_id == batch_id, ITEMS.c.status.in_(UNFINISHED))
    ).scalar_one()
    return left == 0


def run_line(rt: Runtime, batch_id: str, item_id: int, offset: int, length: int, *, chat_wait_s: float = 60.0) -> str:
    """One line end to end: claim, compute, record; the last line finalizes the batch."""
    claimed = claim_line(rt, batch_id, item_id)
    if claimed is None:
        return "not claimed"
    if claimed.attempt > rt.settings.batch_max_attempts:
        outcome = _error(claimed, "poison", f"gave up after {claimed.attempt - 1} deliveries "
                                            "(worker lost, timed out or crashed each time)")
    else:
        try:
            raw = load_line(rt, claimed.input_file_id, offset, length)
            if claimed.endpoint == CHAT:
                outcome = chat_line(rt, claimed, raw, wait_s=chat_wait_s)
            else:
                outcome = moderation_line(rt, claimed, raw)
        except Exception as exc:
            if claimed.attempt < rt.settings.batch_max_attempts:
                raise  # the reaper (or a redelivery) retries it
            outcome = _error(claimed, "internal_error", f"{type(exc).__name__}: {exc}")
    if finish_line(rt, claimed, outcome):
        finalize_batch(rt, batch_id)
    return "failed" if outcome.error else "completed"


# -- finalize -----------------------------------------------------------------------------------------------------
def _encode(line: dict[str, Any]) -> bytes:
    return (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def output_lines(session: Session, batch_id: str) -> tuple[bytes, bytes]:
    """The output file (completed lines) and the error file (failed lines), in input order."""
    out, err = bytearray(), bytearray()
    rows = session.execute(
        select(ITEMS.c.id, ITEMS.c.custom_id, ITEMS.c.status, ITEMS.c.result, ITEMS.c.error)
        .where(ITEMS.c.batch_id == batch_id, ITEMS.c.status.in_((COMPLETED, FAILED)))
        .order_by(ITEMS.c.line_no)
        .execution_options(yield_per=500)
    )
    for row in rows:
        line_id = f"batch_req_{row.id}"
        if row.status == COMPLETED:
            out += _encode({"id": line_id, "custom_id": row.custom_id, "response": row.result, "error": None})
        else:
            error = dict(row.error or {})
            custom_id = row.custom_id if row.custom_id is not None else error.pop("custom_id", None)
            error.pop("custom_id", None)
            out_error = {"code": error.pop("code", "error"), "message": error.pop("message", ""),
                         "line": error.pop("line", None), **error}
            err += _encode({"id": line_id, "custom_id": custom_id, "response": None, "error": out_error})
    return bytes(out), bytes(err)


def finalize_batch(rt: Runtime, batch_id: str) -> str | None:
    """Assemble the output and error files once every line is finished; the batch's final status, or None."""

    def mark(session: Session) -> bool:
        status = _lock_status(session, batch_id)
        if status not in (BatchStatus.IN_PROGRESS.value, BatchStatus.FINALIZING.value, BatchStatus.CANCELLING.value):
            return False
        if not _last_one(session, batch_id):
            return False
        if status == BatchStatus.IN_PROGRESS.value:
            now = utcnow()
            session.execute(update(BATCHES).where(BATCHES.c.id == batch_id).values(
                status=BatchStatus.FINALIZING.value, finalizing_at=now, updated_at=now))
        return True

    if not run_in_transaction(rt.factory, mark):
        return None

    def assemble(session: Session) -> str | None:
        row = session.execute(
            select(BATCHES.c.status, BATCHES.c.tenant_id, BATCHES.c.expired_at).where(BATCHES.c.id == batch_id)
            .with_for_update()
        ).first()
        if row is None or row.status not in (BatchStatus.FINALIZING.value, BatchStatus.CANCELLING.value):
            return None
        out, err = output_lines(session, batch_id)
        now = utcnow()
        values: dict[str, Any] = {"updated_at": now, "output_file_id": None, "error_file_id": None}
        for content, purpose, key, suffix in ((out, "batch_output", "output_file_id", "output"),
                                              (err, "batch_error", "error_file_id", "error")):
            if content:
                file_id = f"file-{uuid.uuid4().hex}"
                session.execute(insert(FILES).values(
                    id=file_id, tenant_id=row.tenant_id, purpose=purpose, filename=f"{batch_id}_{suffix}.jsonl",
                    bytes=len(content), sha256=hashlib.sha256(content).hexdigest(), content=content,
                    created_at=now,
                ))
                values[key] = file_id
        if row.status == BatchStatus.FINALIZING.value:
            final = BatchStatus.COMPLETED.value
            values["completed_at"] = now
        elif row.expired_at is not None:
            final = BatchStatus.EXPIRED.value
        else:
            final = BatchStatus.CANCELLED.value
            values["cancelled_at"] = now
        values["status"] = final
        session.execute(update(BATCHES).where(BATCHES.c.id == batch_id).values(**values))
        return final

    return run_in_transaction(rt.factory, assemble)


def _lock_status(session: Session, batch_id: str) -> str | None:
    return session.execute(
        select(BATCHES.c.status).where(BATCHES.c.id == batch_id).with_for_update()
    ).scalar_one_or_none()


# -- reaper -------------------------------------------------------------------------------------------------------
@dataclass
class Reaped:
    restarted: list[str] = field(default_factory=list)
    resent: dict[str, list[LineRef]] = field(default_factory=dict)
    endpoints: dict[str, str] = field(default_factory=dict)
    finalize: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)


def reap(rt: Runtime, *, grace_s: float, stall_s: float, limit: int = 100) -> Reaped:
    """Decide what stuck batches need (see the module docstring); the caller sends the messages."""
    out = Reaped()
    now = utcnow()

    def run(session: Session) -> None:
        out.restarted = list(session.scalars(
            select(BATCHES.c.id).where(BATCHES.c.status == BatchStatus.VALIDATING.value,
                                       BATCHES.c.updated_at < now - timedelta(seconds=grace_s)).limit(limit)
        ))
        expiring = list(session.scalars(
            select(BATCHES.c.id).where(BATCHES.c.status == BatchStatus.IN_PROGRESS.value,
                                       BATCHES.c.expires_at < now).limit(limit)
        ))
        for batch_id in expiring:
            _, finalize = request_cancel(session, batch_id, expired=True)
            out.expired.append(batch_id)
            if finalize:
                out.finalize.append(batch_id)
        idle = session.execute(
            select(BATCHES.c.id, BATCHES.c.status, BATCHES.c.endpoint, BATCHES.c.input_file_id, BATCHES.c.updated_at)
            .where(BATCHES.c.status.in_((BatchStatus.IN_PROGRESS.value, BatchStatus.FINALIZING.value,
                                         BatchStatus.CANCELLING.value)),
                   BATCHES.c.updated_at < now - timedelta(seconds=grace_s))
            .order_by(BATCHES.c.updated_at).limit(limit)
        ).all()
        for b in idle:
            refs = pending_refs(session, b.id, b.input_file_id, rt.options())
            if not refs:
                out.finalize.append(b.id)
            elif b.updated_at < now - timedelta(seconds=stall_s):
                out.resent[b.id] = refs
                out.endpoints[b.id] = b.endpoint
                session.execute(update(BATCHES).where(BATCHES.c.id == b.id).values(updated_at=now))

    run_in_transaction(rt.factory, run)
    return out


# -- Celery tasks -------------------------------------------------------------------------------------------------
def send_lines(batch_id: str, endpoint: str, refs: list[LineRef]) -> None:
    task = batch_chat_line if endpoint == CHAT else batch_moderation_line
    for ref in refs:
        task.apply_async((batch_id, ref.item_id, ref.offset, ref.length))


@app.task(name=START_TASK)
def batch_start(batch_id: str) -> str:
    """Validate the input file, insert one row per line, send one message per usable line."""
    rt = current()
    started = start_batch(rt, batch_id)
    send_lines(batch_id, started.endpoint, started.lines)
    if started.finalize:
        finalize_batch(rt, batch_id)
    return f"{len(started.lines)} lines sent"


def _retrying(task: Any, run: Callable[[], str]) -> str:
    """Run a line; on an unexpected error publish the same message again after a backoff (the claim counts the
    attempts, and the line fails as poison after ``ECOALIGN_BATCH_MAX_ATTEMPTS``)."""
    try:
        return run()
    except Exception as exc:
        retries = int(getattr(task.request, "retries", 0) or 0)
        log.warning("batch line task failed (%s: %s); retrying", type(exc).__name__, exc)
        raise task.retry(exc=exc, countdown=min(2.0 ** retries, 30.0), max_retries=None) from exc


@app.task(name=MODERATION_LINE_TASK, bind=True)
def batch_moderation_line(self: Any, batch_id: str, item_id: int, offset: int, length: int) -> str:
    """One ``/v1/moderations`` line."""
    return _retrying(self, lambda: run_line(current(), batch_id, item_id, offset, length))


@app.task(name=CHAT_LINE_TASK, bind=True)
def batch_chat_line(self: Any, batch_id: str, item_id: int, offset: int, length: int) -> str:
    """One ``/v1/chat/completions`` line (an in-process EcoAlign job), bounded by the task's soft time limit."""
    rt = current()
    wait_s = max(1.0, rt.settings.task_soft_time_limit_s - 5.0)
    return _retrying(self, lambda: run_line(rt, batch_id, item_id, offset, length, chat_wait_s=wait_s))


@app.task(name=FINALIZE_TASK)
def batch_finalize(batch_id: str) -> str:
    return finalize_batch(current(), batch_id) or "not ready"


@app.task(name=REAP_TASK)
def batch_reap() -> dict[str, int]:
    """Periodic (beat): restart, re-send, finalize or expire stuck batches. Safe to run anywhere, any number."""
    rt = current()
    s = rt.settings
    stall_s = max(s.batch_stall_s, float(s.task_time_limit_s) + 5)
    found = reap(rt, grace_s=s.dispatch_grace_s, stall_s=stall_s)
    for batch_id in found.restarted:
        batch_start.apply_async((batch_id,))
    for batch_id, refs in found.resent.items():
        send_lines(batch_id, found.endpoints[batch_id], refs)
    for batch_id in found.finalize:
        finalize_batch(rt, batch_id)
    counts = {"restarted": len(found.restarted), "resent": sum(len(r) for r in found.resent.values()),
              "finalized": len(found.finalize), "expired": len(found.expired)}
    if any(counts.values()):
        log.info("batch reaper: %s", counts)
    return counts
