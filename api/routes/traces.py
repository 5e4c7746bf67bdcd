"""``/v1/traces``: the tenant's stored traces (alignment jobs and moderation decisions), filtered and paged.

What a trace is, and its read path, is ``ecoalign.audit.traces``; the SQL is ``ecoalign.store.traces``. Another
tenant's trace is answered like a missing one (404).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from api.auth import CurrentPrincipal
from api.context import AppContext, get_ctx
from api.errors import FieldError, from_trace_filter_error, not_found
from api.routes.jobs import _401, _404, _422, _503
from api.schemas import EdgeOut, JobOut, NodeOut
from ecoalign.audit.traces import TraceFilterError, list_view, make_filter, trace_view
from ecoalign.categories import MODERATION_CATEGORIES
from ecoalign.store import traces
from ecoalign.store.db import run_in_transaction
from ecoalign.store.pagination import InvalidCursor

router = APIRouter(prefix="/v1/traces", tags=["traces"])
Ctx = Annotated[AppContext, Depends(get_ctx)]
TraceId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="the trace's id")]
CategoryName = Literal[MODERATION_CATEGORIES]  # type: ignore[valid-type]
# ISO 8601 as text (pydantic's datetime would also take a bare number as a Unix time, which the spec does not say)
ISO_TIME = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}:?\d{2})?$"
_404_TRACE = {404: {**_404[404], "description": "no such trace for this tenant"}}


class TraceSummaryOut(BaseModel):
    id: str
    object: Literal["trace"] = "trace"
    kind: Literal["job", "moderation"]
    created_at: datetime | None = None
    status: str | None = None
    decision: str | None = Field(None, description="job: answered | refused; moderation: the decision path")
    path_safety: float | None = Field(None, description="job: S(P) of the chosen path; moderation: the scan's")
    strategy: str | None = Field(None, description="the job's strategy (none for moderation)")


class TraceListOut(BaseModel):
    object: Literal["list"] = "list"
    data: list[TraceSummaryOut]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool
    next_cursor: str | None = Field(None, description="pass as after for the next page; null on the last page")


class TraceStepOut(BaseModel):
    node_id: str
    kind: str
    text: str
    safety: float | None = None
    evaluator: str


class TraceAuditOut(BaseModel):
    audit_id: str
    evaluator: str
    aggregate: str
    tau: float
    created_at: datetime | None = None
    process_blind: bool | None = None
    path_safety: float | None = None
    answer_safety: float | None = None
    weakest_step: int | None = None
    step_safeties: list[float] | None = None
    error: str | None = None


class TraceGraphOut(BaseModel):
    nodes: list[NodeOut]
    edges: list[EdgeOut]


class TraceOut(TraceSummaryOut):
    """A job trace has ``steps`` (its chosen path, root left out), ``job``, ``graph`` and ``audits``; a moderation
    trace has ``flagged``, ``custom_id``, ``result`` (the OpenAI result) and ``trace``."""

    steps: list[TraceStepOut] | None = None
    job: JobOut | None = None
    graph: TraceGraphOut | None = None
    audits: list[TraceAuditOut] | None = None
    flagged: bool | None = None
    custom_id: str | None = None
    result: dict[str, Any] | None = None
    trace: dict[str, Any] | None = None


@router.get(
    "",
    response_model=TraceListOut,
    summary="List the tenant's traces (jobs and moderation decisions), newest first",
    operation_id="listTraces",
    responses={**_401, **_422, **_503},
)
def list_traces(
    principal: CurrentPrincipal,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=100, description="page size")] = 20,
    after: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                                       description="next_cursor of the previous page")] = None,
    kind: Annotated[Literal["job", "moderation"] | None, Query(description="only this kind")] = None,
    decision: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    min_path_safety: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_path_safety: Annotated[float | None, Query(ge=0, le=1)] = None,
    category: Annotated[CategoryName | None, Query(description="some score of the trace is >= 0.5 for it")] = None,
    evaluator: Annotated[str | None, Query(min_length=1, max_length=200,
                                           description="part of an evaluator id that scored the trace")] = None,
    strategy: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    created_after: Annotated[str | None, Query(pattern=ISO_TIME,
                                               description="created at or after (ISO 8601; naive = UTC)")] = None,
    created_before: Annotated[str | None, Query(pattern=ISO_TIME,
                                                description="created before (ISO 8601; naive = UTC)")] = None,
) -> dict[str, Any]:
    try:
        flt = make_filter({
            "kind": kind, "decision": decision, "min_path_safety": min_path_safety, "max_path_safety": max_path_safety,
            "category": category, "evaluator": evaluator, "strategy": strategy, "created_after": created_after,
            "created_before": created_before,
        })
    except TraceFilterError as exc:
        raise from_trace_filter_error(exc) from None
    scope = traces.Scope(tenant_id=principal.tenant_id)

    def read(session: Session) -> dict[str, Any]:
        try:
            page = traces.list_traces(session, scope, flt, limit=limit, after=after)
        except InvalidCursor:
            raise FieldError(["query", "after"], "invalid cursor: pass next_cursor from the previous page") from None
        return list_view(page)

    return run_in_transaction(ctx.sessions, read)


@router.get(
    "/{trace_id}",
    response_model=TraceOut,
    summary="Get a trace: a job with its graph, chosen path and audits, or a moderation decision",
    operation_id="getTrace",
    responses={**_401, **_404_TRACE, **_422, **_503},
)
def get_trace(trace_id: TraceId, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, Any]:
    scope = traces.Scope(tenant_id=principal.tenant_id)
    view = run_in_transaction(ctx.sessions, lambda s: trace_view(s, scope, trace_id))
    if view is None:
        raise not_found("trace")
    return view
