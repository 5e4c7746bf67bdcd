"""``/v1/audits``: re-score the tenant's stored jobs, or traces sent in the body, and read the stored runs back.

An audit runs in the request (up to ``ECOALIGN_AUDIT_MAX_TRACES`` traces; larger ones: ``ecoalign audit``) and is
stored with its evaluator id; it never changes the scores it re-scores. The logic is ``ecoalign.audit.service``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.orm import Session

from api.auth import CurrentPrincipal
from api.context import AppContext, get_ctx
from api.errors import from_audit_error, from_trace_filter_error, not_found
from api.routes.jobs import _401, _404, _422, _503
from api.routes.traces import ISO_TIME, CategoryName
from ecoalign.audit.evaluators import AuditSetupError, build_evaluator
from ecoalign.audit.service import (
    AuditOptions,
    TooManyTraces,
    audit_for_tenant,
    report_line,
    run_view,
)
from ecoalign.audit.traces import TraceFilterError, make_filter
from ecoalign.store import audits, traces
from ecoalign.store.db import run_in_transaction, session_scope

router = APIRouter(prefix="/v1/audits", tags=["audits"])
Ctx = Annotated[AppContext, Depends(get_ctx)]
AuditId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="the audit's id")]
_404_AUDIT = {404: {**_404[404], "description": "no such audit for this tenant"}}


class JobFilterIn(BaseModel):
    """Which of the tenant's jobs to audit: the filters of ``GET /v1/traces`` (all optional)."""

    decision: str | None = Field(None, min_length=1, max_length=64)
    min_path_safety: float | None = Field(None, ge=0, le=1)
    max_path_safety: float | None = Field(None, ge=0, le=1)
    category: CategoryName | None = None
    evaluator: str | None = Field(None, min_length=1, max_length=200)
    strategy: str | None = Field(None, min_length=1, max_length=64)
    created_after: str | None = Field(None, pattern=ISO_TIME, description="ISO 8601; naive = UTC")
    created_before: str | None = Field(None, pattern=ISO_TIME, description="ISO 8601; naive = UTC")


class AuditCreate(BaseModel):
    """Exactly one of ``jobs`` (stored jobs) or ``traces`` (imported traces: ``{id, prompt, images?, steps, answer}``
    or ``{id, messages}``; images as data URLs)."""

    jobs: JobFilterIn | None = None
    traces: list[dict[str, Any]] | None = Field(None, min_length=1)
    evaluator: list[Literal["offline", "heuristic", "judge"]] = Field(
        default_factory=lambda: ["offline"], min_length=1, max_length=3,
        description="re-score with these (the weakest link of them); judge: the server's ECOALIGN_JUDGE_URL",
    )
    aggregate: Literal["min", "mean"] = Field("min", description="path safety: min (the method); mean to compare")
    tau: float = Field(0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _one_source(self) -> AuditCreate:
        if (self.jobs is None) == (self.traces is None):
            raise ValueError("give exactly one of jobs or traces")
        return self


class AuditSummaryOut(BaseModel):
    evaluator: str
    aggregate: str
    tau: float
    traces: int
    scored: int
    failed: int
    process_blind: int
    process_blind_rate: float | None = None
    unsafe_paths: int
    unsafe_answers: int
    compared: int
    disagreements: int
    steps_compared: int
    steps_changed: int
    tokens: int
    errors: list[dict[str, Any]]


class AuditOut(BaseModel):
    id: str
    object: Literal["audit"] = "audit"
    status: Literal["running", "completed", "failed"]
    evaluator: str = Field(description="the evaluator id that produced this audit's scores (its version)")
    aggregate: str
    tau: float
    source: Literal["import", "jobs"]
    spec: dict[str, Any]
    summary: AuditSummaryOut | None = None
    created_at: datetime
    finished_at: datetime | None = None


@router.post(
    "",
    status_code=201,
    response_model=AuditOut,
    summary="Audit the tenant's jobs, or traces sent in the body, with a chosen evaluator",
    operation_id="createAudit",
    responses={**_401, **_422, **_503},
)
def create_audit(body: AuditCreate, response: Response, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, Any]:
    settings = ctx.settings
    try:
        flt = make_filter(body.jobs.model_dump()) if body.jobs is not None else None
        evaluator = build_evaluator(
            body.evaluator, ctx.root, judge_url=settings.judge_url, judge_model=settings.judge_model,
            judge_api_key=settings.judge_api_key,
        )
    except TraceFilterError as exc:
        raise from_trace_filter_error(exc, where="body.jobs") from None
    except AuditSetupError as exc:
        raise from_audit_error(exc) from None
    try:
        run_id = audit_for_tenant(
            ctx.sessions, evaluator, principal.tenant_id, imported=body.traces, jobs=flt,
            options=AuditOptions(aggregate=body.aggregate, tau=body.tau), max_traces=settings.audit_max_traces,
        )
    except TooManyTraces as exc:
        raise from_audit_error(exc) from None
    finally:
        evaluator.close()
    response.headers["Location"] = f"/v1/audits/{run_id}"
    return _read_run(ctx, principal.tenant_id, run_id)


def _read_run(ctx: AppContext, tenant_id: str, run_id: str) -> dict[str, Any]:
    scope = traces.Scope(tenant_id=tenant_id)

    def read(session: Session) -> dict[str, Any] | None:
        run = audits.get_run(session, scope, run_id)
        return run_view(run) if run is not None else None

    view = run_in_transaction(ctx.sessions, read)
    if view is None:
        raise not_found("audit")
    return view


@router.get(
    "/{audit_id}",
    response_model=AuditOut,
    summary="Get an audit run and its summary",
    operation_id="getAudit",
    responses={**_401, **_404_AUDIT, **_422, **_503},
)
def get_audit(audit_id: AuditId, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, Any]:
    return _read_run(ctx, principal.tenant_id, audit_id)


@router.get(
    "/{audit_id}/report",
    response_class=StreamingResponse,
    summary="Get an audit's report: one JSON line per trace, in order (a failed trace has error instead of scores)",
    operation_id="getAuditReport",
    responses={
        200: {"description": "the report", "content": {"application/jsonl": {"schema": {"type": "string"}}}},
        **_401,
        **_404_AUDIT,
        **_422,
        **_503,
    },
)
def get_audit_report(audit_id: AuditId, principal: CurrentPrincipal, ctx: Ctx) -> StreamingResponse:
    _read_run(ctx, principal.tenant_id, audit_id)  # 404 before the stream starts

    def lines() -> Any:
        import json

        with session_scope(ctx.sessions) as session:
            for result in audits.iter_results(session, audit_id):
                yield json.dumps(report_line(result), ensure_ascii=False) + "\n"

    return StreamingResponse(lines(), media_type="application/jsonl")
