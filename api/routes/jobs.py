"""``/v1/jobs``: submit, read, list, cancel and inspect the graph of alignment jobs, always within one tenant.

A job that belongs to another tenant is answered exactly like one that does not exist (404), so ids are not
disclosed. Handlers are plain ``def``: FastAPI runs them in its thread pool, which suits the synchronous store
and the CPU-bound image checks.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from sqlalchemy.orm import Session

from api.auth import CurrentPrincipal, Principal
from api.context import AppContext, get_ctx
from api.errors import ApiError, FieldError, from_policy_error, from_request_error, not_found
from api.schemas import ErrorOut, GraphOut, JobCreate, JobList, JobOut, JobStatusName, ValidationErrorOut
from ecoalign import quotas
from ecoalign.content import Request as AlignRequest
from ecoalign.engine.policy import Policy, PolicyError
from ecoalign.runtime import submission
from ecoalign.runtime.report import graph_view, job_view
from ecoalign.runtime.requests import RequestError, request_from_messages
from ecoalign.store import repository
from ecoalign.store.db import run_in_transaction
from ecoalign.store.models import Job, JobStatus
from ecoalign.store.pagination import InvalidCursor

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

Ctx = Annotated[AppContext, Depends(get_ctx)]
_CURSOR_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a job id: anything else is no cursor (and never reaches SQL)
JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="the job's id")]


def _header(description: str, kind: str = "string") -> dict[str, Any]:
    return {"description": description, "schema": {"type": kind}}


_401 = {
    401: {
        "model": ErrorOut,
        "description": "missing, unknown or revoked API key",
        "headers": {"WWW-Authenticate": _header("Bearer")},
    }
}
_404 = {404: {"model": ErrorOut, "description": "no such job for this tenant"}}
_422 = {422: {"model": ValidationErrorOut, "description": "invalid request; each issue names its field"}}
_503 = {
    503: {
        "model": ErrorOut,
        "description": "the database is unavailable; retry later",
        "headers": {"Retry-After": _header("seconds", "integer")},
    }
}


# -- submit ---------------------------------------------------------------------------------------------------------
@router.post(
    "",
    status_code=202,
    response_model=JobOut,
    summary="Submit an alignment job",
    operation_id="submitJob",
    responses={
        202: {
            "description": "the job (new, or the one already created with this Idempotency-Key and body)",
            "headers": {
                "Location": _header("/v1/jobs/{id}"),
                "Idempotent-Replayed": _header("'true' when this is the job an earlier request created"),
            },
            "links": {
                name: {"operationId": op, "parameters": {"job_id": "$response.body#/id"}}
                for name, op in (("GetJob", "getJob"), ("GetJobGraph", "getJobGraph"), ("CancelJob", "cancelJob"))
            },
        },
        **_401,
        402: {"model": ErrorOut, "description": "the tenant's total token budget cannot cover a minimal job"},
        409: {"model": ErrorOut, "description": "this Idempotency-Key was used with a different body"},
        413: {"model": ErrorOut, "description": "the body or one image is over the size limit"},
        **_422,
        # 429 (rate, concurrency, daily budget): api.auth.RATE_LIMITED, on every authenticated route
        **_503,
    },
)
def submit_job(
    body: JobCreate,
    response: Response,
    principal: CurrentPrincipal,
    ctx: Ctx,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=200,
            description="same key + same body → the same job; same key + another body → 409",
        ),
    ] = None,
) -> dict[str, Any]:
    request = _parse_request(body, ctx)
    policy = _parse_policy(body)
    view, created = run_in_transaction(
        ctx.sessions,
        lambda s: submit_for(s, request, policy, body.strategy, principal, idempotency_key),
    )
    if created:
        dispatch_job(ctx, view["id"])
    response.headers["Location"] = f"/v1/jobs/{view['id']}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return view


def _parse_request(body: JobCreate, ctx: AppContext) -> AlignRequest:
    settings = ctx.settings
    messages = [m.model_dump(exclude_none=True) for m in body.messages]
    try:
        return request_from_messages(
            messages,
            max_image_bytes=settings.max_image_bytes,
            max_images=settings.max_images,
            max_text_chars=settings.max_text_chars,
            remote_fetch=ctx.remote_fetch,
        )
    except RequestError as exc:
        raise from_request_error(exc) from None


def _parse_policy(body: JobCreate) -> Policy:
    try:
        return Policy.from_dict(body.policy.model_dump())
    except (PolicyError, TypeError) as exc:
        raise from_policy_error(exc) from None


def submit_for(
    session: Session,
    request: AlignRequest,
    policy: Policy,
    strategy: str,
    principal: Principal,
    idempotency_key: str | None,
) -> tuple[dict[str, Any], bool]:
    """``submission.submit_tenant_job`` for the caller's tenant. Its domain errors (``TenantBudgetExhausted``,
    ``IdempotencyConflict``, ``LimitExceeded``) are answered by api/errors.py: 402, 429 with ``Retry-After``, 409.
    The tenant's concurrent-jobs limit is checked for a new job only, never for an idempotent replay."""
    limit = principal.quota.max_concurrent_jobs
    if limit is not None and (idempotency_key is None
                              or repository.job_for_key(session, principal.tenant_id, idempotency_key) is None):
        quotas.check_concurrent_jobs(session, principal.tenant_id, limit)
    return submission.submit_tenant_job(session, request, policy, strategy, principal.tenant_id, idempotency_key)


def dispatch_job(ctx: AppContext, job_id: str) -> None:
    """Start the job now if the broker takes it; never fail the request over it.

    The job row and its pending root are already committed, and the workers' reaper enqueues any pending node
    that was never dispatched (within ``dispatch_grace_s``), so a broker outage only delays the job.
    """
    try:
        accepted = ctx.dispatcher(job_id)
    except Exception as exc:  # any dispatcher failure has the same remedy: the reaper
        log.warning("job %s not enqueued (%s); the reaper will start it", job_id, exc)
        accepted = False
    if accepted is False:
        ctx.dispatch_deferred()


# -- read -----------------------------------------------------------------------------------------------------------
def _owned(session: Session, job_id: str, tenant_id: str) -> Job:
    job = repository.get_tenant_job(session, job_id, tenant_id)
    if job is None:
        raise not_found()
    return job


@router.get(
    "/{job_id}",
    response_model=JobOut,
    summary="Get a job",
    operation_id="getJob",
    responses={**_401, **_404, **_422, **_503},
)
def get_job(job_id: JobId, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, Any]:
    return run_in_transaction(ctx.sessions, lambda s: job_view(_owned(s, job_id, principal.tenant_id)))


@router.get(
    "/{job_id}/graph",
    response_model=GraphOut,
    summary="Get a job's thought graph: every node and edge with scores, tokens, status and prune reasons",
    operation_id="getJobGraph",
    responses={**_401, **_404, **_422, **_503},
)
def get_graph(job_id: JobId, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, Any]:
    def read(session: Session) -> dict[str, Any]:
        _owned(session, job_id, principal.tenant_id)
        return {"job_id": job_id, **graph_view(session, job_id)}

    return run_in_transaction(ctx.sessions, read)


@router.post(
    "/{job_id}/cancel",
    response_model=JobOut,
    summary="Cancel a queued or running job (idempotent for an already cancelled job)",
    operation_id="cancelJob",
    responses={
        **_401,
        **_404,
        409: {"model": ErrorOut, "description": "the job already finished (succeeded or failed)"},
        **_422,
        **_503,
    },
)
def cancel_job(job_id: JobId, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, Any]:
    def cancel(session: Session) -> dict[str, Any]:
        job = _owned(session, job_id, principal.tenant_id)
        if not repository.cancel_job(session, job_id, reason="cancelled by client"):
            job = _owned(session, job_id, principal.tenant_id)
            if job.status != JobStatus.CANCELLED.value:
                raise ApiError(409, "job_finished", f"job {job_id} already {job.status}; it cannot be cancelled")
        return job_view(_owned(session, job_id, principal.tenant_id))

    return run_in_transaction(ctx.sessions, cancel)


# -- list -----------------------------------------------------------------------------------------------------------
@router.get(
    "",
    response_model=JobList,
    summary="List the tenant's jobs, newest first",
    operation_id="listJobs",
    responses={**_401, **_422, **_503},
)
def list_jobs(
    principal: CurrentPrincipal,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=100, description="page size")] = 20,
    after: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")] = None,
    status: Annotated[JobStatusName | None, Query(description="only jobs in this status")] = None,
) -> dict[str, Any]:
    if after is not None and not _CURSOR_ID.fullmatch(after):
        raise FieldError(["query", "after"], "invalid cursor: pass next_cursor from the previous page")

    def read(session: Session) -> dict[str, Any]:
        try:
            page = repository.list_jobs(session, principal.tenant_id, limit=limit, after=after, status=status)
        except InvalidCursor:
            raise FieldError(["query", "after"], "invalid cursor: pass next_cursor from the previous page") from None
        return {"data": [job_view(j) for j in page.items], "has_more": page.has_more, "next_cursor": page.next_cursor}

    return run_in_transaction(ctx.sessions, read)
