"""``/v1/batches``: OpenAI's Batch API over the Celery workers (the service is ``ecoalign.batches``), per tenant.

``POST /v1/batches`` records the batch (``validating``) and hands it to the workers, which check every line,
insert one ``batch_items`` row per line and run **one task per line**; a line that cannot be used becomes one
error line and nothing else. Counts live in the ``batches`` row; the task that finishes the last line assembles
the output and error files (``completed``). ``POST /v1/batches/{id}/cancel`` stops the lines not yet started;
those already running finish and are kept (``cancelling`` → ``cancelled``). A batch of another tenant is
answered like a missing one (404).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Depends, FastAPI, Path, Query
from fastapi import Request as HttpRequest
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from api.auth import CurrentPrincipal
from api.context import AppContext, get_ctx
from api.routes.jobs import _401, _422, _503
from api.schemas import ErrorOut, Text, _In
from ecoalign.batches import catalog
from ecoalign.batches.cancel import cancel_batch as cancel_owned_batch
from ecoalign.store.batch_models import Batch
from ecoalign.store.db import run_in_transaction

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/batches", tags=["batches"])
Ctx = Annotated[AppContext, Depends(get_ctx)]
BatchId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="the batch's id")]
_404 = {404: {"model": ErrorOut, "description": "no such batch (or input file) for this tenant"}}

# (task, batch_id) -> started; task is "start" or "finalize". Default: ecoalign.queue.dispatch.
BatchDispatcher = Callable[[str, str], object]


def celery_batch_dispatcher(task: str, batch_id: str) -> bool:
    from ecoalign.queue.dispatch import enqueue_batch

    return enqueue_batch(task, batch_id)


def batch_dispatcher(app: FastAPI) -> BatchDispatcher:
    """``app.state.batch_dispatcher`` if set (tests), else the Celery one."""
    return cast(BatchDispatcher, getattr(app.state, "batch_dispatcher", None) or celery_batch_dispatcher)


def dispatch(app: FastAPI, task: str, batch_id: str) -> None:
    """Hand the batch to the workers; never fail the request over it (the batch reaper retries stalled ones)."""
    try:
        batch_dispatcher(app)(task, batch_id)
    except Exception as exc:
        log.warning("batch %s: %s not enqueued (%s); the batch reaper will retry", batch_id, task, exc)


# -- models -----------------------------------------------------------------------------------------------------
class BatchOptions(_In):
    """ecoalign's extension: a token budget for the batch's judge escalations (moderation lines)."""

    token_budget: int | None = Field(None, ge=0, le=10**12)


class BatchCreate(_In):
    input_file_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    endpoint: Literal["/v1/moderations", "/v1/chat/completions"]
    completion_window: Literal["24h"]
    metadata: dict[Annotated[str, Field(max_length=64)], Annotated[Text, Field(max_length=512)]] | None = Field(
        None, max_length=16
    )
    ecoalign: BatchOptions | None = None


class RequestCounts(BaseModel):
    total: int
    completed: int
    failed: int


class BatchErrorOut(BaseModel):
    code: str
    message: str
    param: str | None = None
    line: int | None = None


class BatchErrors(BaseModel):
    object: Literal["list"] = "list"
    data: list[BatchErrorOut]


class BatchExtension(BaseModel):
    tokens_spent: int = Field(description="judge tokens the batch's moderation lines and chat jobs spent")
    token_budget: int | None = None


BatchStatusName = Literal[
    "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"
]


class BatchOut(BaseModel):
    """OpenAI's batch object (timestamps in Unix seconds)."""

    id: str
    object: Literal["batch"] = "batch"
    endpoint: str
    errors: BatchErrors | None = None
    input_file_id: str
    completion_window: str
    status: BatchStatusName
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: int
    in_progress_at: int | None = None
    expires_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    request_counts: RequestCounts
    metadata: dict[str, str] | None = None
    ecoalign: BatchExtension


class BatchList(BaseModel):
    object: Literal["list"] = "list"
    data: list[BatchOut]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool


def _ts(value: Any) -> int | None:
    return int(value.timestamp()) if value is not None else None


def batch_view(b: Batch) -> dict[str, Any]:
    return {
        "id": b.id,
        "object": "batch",
        "endpoint": b.endpoint,
        "errors": b.errors,
        "input_file_id": b.input_file_id,
        "completion_window": b.completion_window,
        "status": b.status,
        "output_file_id": b.output_file_id,
        "error_file_id": b.error_file_id,
        "created_at": _ts(b.created_at),
        "in_progress_at": _ts(b.in_progress_at),
        "expires_at": _ts(b.expires_at),
        "finalizing_at": _ts(b.finalizing_at),
        "completed_at": _ts(b.completed_at),
        "failed_at": _ts(b.failed_at),
        "expired_at": _ts(b.expired_at),
        "cancelling_at": _ts(b.cancelling_at),
        "cancelled_at": _ts(b.cancelled_at),
        "request_counts": {
            "total": b.requests_total,
            "completed": b.requests_completed,
            "failed": b.requests_failed,
        },
        "metadata": b.metadata_,
        "ecoalign": {"tokens_spent": b.tokens_spent, "token_budget": b.token_budget},
    }


# -- endpoints --------------------------------------------------------------------------------------------------
@router.post(
    "",
    response_model=BatchOut,
    summary="Create a batch from an uploaded JSONL file",
    operation_id="createBatch",
    responses={
        200: {
            "description": "the batch, validating",
            "links": {  # for clients and for Schemathesis' stateful run: follow the batch just made
                "GetBatch": {"operationId": "getBatch", "parameters": {"batch_id": "$response.body#/id"}},
                "CancelBatch": {"operationId": "cancelBatch", "parameters": {"batch_id": "$response.body#/id"}},
                "GetInputFile": {"operationId": "getFile", "parameters": {"file_id": "$response.body#/input_file_id"}},
            },
        },
        **_401,
        **_404,
        **_422,
        **_503,
    },
)
def create_batch(body: BatchCreate, principal: CurrentPrincipal, ctx: Ctx, http: HttpRequest) -> dict[str, Any]:
    options = body.ecoalign or BatchOptions()
    budget = options.token_budget if options.token_budget is not None else ctx.settings.batch_token_budget
    new = catalog.NewBatch(body.input_file_id, body.endpoint, body.completion_window, budget, body.metadata)

    def create(session: Session) -> dict[str, Any]:
        limit = principal.quota.max_batch_lines_in_flight
        return batch_view(catalog.create_batch(session, principal.tenant_id, new, max_lines_in_flight=limit))

    view = run_in_transaction(ctx.sessions, create)
    dispatch(http.app, "start", view["id"])
    return view


@router.get(
    "/{batch_id}",
    response_model=BatchOut,
    summary="Get a batch",
    operation_id="getBatch",
    responses={**_401, **_404, **_422, **_503},
)
def get_batch(batch_id: BatchId, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, Any]:
    return run_in_transaction(
        ctx.sessions, lambda s: batch_view(catalog.owned_batch(s, batch_id, principal.tenant_id))
    )


@router.get(
    "",
    response_model=BatchList,
    summary="List the tenant's batches, newest first",
    operation_id="listBatches",
    responses={**_401, **_422, **_503},
)
def list_batches(
    principal: CurrentPrincipal,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=100, description="page size")] = 20,
    after: Annotated[
        str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="last_id of the previous page")
    ] = None,
) -> dict[str, Any]:
    def read(session: Session) -> dict[str, Any]:
        return catalog.list_batches(session, principal.tenant_id, limit, after).openai_list(batch_view)

    return run_in_transaction(ctx.sessions, read)


@router.post(
    "/{batch_id}/cancel",
    response_model=BatchOut,
    summary="Cancel a batch: lines not yet started are dropped; running ones finish (idempotent)",
    operation_id="cancelBatch",
    responses={
        **_401,
        **_404,
        409: {"model": ErrorOut, "description": "the batch already finished (or is finalizing)"},
        **_422,
        **_503,
    },
)
def cancel_batch(batch_id: BatchId, principal: CurrentPrincipal, ctx: Ctx, http: HttpRequest) -> dict[str, Any]:
    def cancel(session: Session) -> tuple[dict[str, Any], bool]:
        batch, finalize = cancel_owned_batch(session, batch_id, principal.tenant_id)
        return batch_view(batch), finalize

    view, finalize = run_in_transaction(ctx.sessions, cancel)
    if finalize:
        dispatch(http.app, "finalize", batch_id)
    return view
