"""``/v1/reviews``: the human review queue (the service is ``ecoalign.reviews``), per tenant.

``GET /v1/reviews?status=pending`` lists the queue (cursor pagination: ``after`` = the previous page's
``last_id``; filters by category and policy); ``POST /v1/reviews/{id}/claim`` leases a task to the caller's key
for ``ECOALIGN_REVIEW_LEASE_S`` (409 if another key holds it); ``POST /v1/reviews/{id}/decision`` records the
verdict (only the lease holder; 409 otherwise). ``GET /v1/moderation_results/{trace_id}`` reads a result as it
stands: the machine's decision, the latest human verdict and the history. The reviewer's page,
``GET /ui/reviews``, is served with the other pages by ``api/routes/ui.py``: a static shell whose script calls
this API with the key the reviewer types in (kept in the tab's ``sessionStorage``), so the page itself holds no
data and needs no cookie.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field
from sqlalchemy.orm import Session

from api.auth import CurrentPrincipal
from api.context import AppContext, get_ctx
from api.errors import FieldError
from api.routes.jobs import _401, _422, _503
from api.schemas import ErrorOut, _In
from ecoalign.categories import MODERATION_CATEGORIES
from ecoalign.reviews import service
from ecoalign.reviews.errors import ReviewNotFound
from ecoalign.store import reviews as store
from ecoalign.store.db import run_in_transaction
from ecoalign.store.pagination import InvalidCursor

router = APIRouter(tags=["reviews"])
Ctx = Annotated[AppContext, Depends(get_ctx)]
TaskId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="the task's id")]
_404 = {404: {"model": ErrorOut, "description": "no such review task for this tenant"}}
_409 = {409: {"model": ErrorOut, "description": "another reviewer holds the lease, or it is not the caller's"}}
Category = Literal[MODERATION_CATEGORIES]  # type: ignore[valid-type]


class DecisionIn(_In):
    verdict: Literal["allow", "flag", "block"] = Field(description="the reviewer's verdict on the item")
    categories: list[Category] = Field(default_factory=list, max_length=len(MODERATION_CATEGORIES),
                                       description="the OpenAI categories the item falls under (none for allow)")
    note: str | None = Field(None, max_length=service.MAX_NOTE_CHARS)


@router.get(
    "/v1/reviews",
    summary="List the tenant's review tasks, newest first",
    operation_id="listReviews",
    responses={**_401, **_422, **_503},
)
def list_reviews(
    principal: CurrentPrincipal,
    ctx: Ctx,
    status: Annotated[Literal["pending", "claimed", "decided"] | None, Query(description="pending includes "
                      "tasks whose lease expired")] = None,
    category: Annotated[Category | None, Query(description="tasks the machine filed under this category")] = None,
    policy_id: Annotated[str | None, Query(max_length=200)] = None,
    policy_version: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(max_length=64, description="last_id of the previous page")] = None,
) -> dict[str, Any]:
    def read(session: Session) -> dict[str, Any]:
        try:
            page = store.list_tasks(session, principal.tenant_id, status=status, category=category,
                                    policy_id=policy_id, policy_version=policy_version, limit=limit, after=after)
        except InvalidCursor:
            raise FieldError(["query", "after"], "invalid cursor: pass last_id of the previous page") from None
        return page.openai_list(service.task_view)

    return run_in_transaction(ctx.sessions, read)


def _detail(session: Session, tenant_id: str, task_id: str) -> dict[str, Any]:
    task = store.get_task(session, tenant_id, task_id)
    if task is None:
        raise ReviewNotFound("no such review task")
    trace = store.trace_of(session, tenant_id, task.trace_id)
    decisions = store.decisions_of(session, tenant_id, task_id=task_id)
    return service.task_view(task, decisions, detail=True, trace=trace.trace if trace is not None else None)


@router.get("/v1/reviews/{task_id}", summary="A review task: the item, the machine's scores and trace, the history",
            operation_id="getReview", responses={**_401, **_404, **_503})
def get_review(task_id: TaskId, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, Any]:
    return run_in_transaction(ctx.sessions, lambda s: _detail(s, principal.tenant_id, task_id))


@router.post("/v1/reviews/{task_id}/claim", summary="Lease the task to the caller's key",
             operation_id="claimReview", responses={**_401, **_404, **_409, **_503})
def claim_review(task_id: TaskId, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, Any]:
    def claim(session: Session) -> dict[str, Any]:
        service.claim(session, principal.tenant_id, task_id, principal.key_id, lease_s=ctx.settings.review_lease_s)
        return _detail(session, principal.tenant_id, task_id)

    return run_in_transaction(ctx.sessions, claim)


@router.post("/v1/reviews/{task_id}/decision", summary="Record the lease holder's verdict",
             operation_id="decideReview", responses={**_401, **_404, **_409, **_422, **_503})
def decide_review(task_id: TaskId, body: DecisionIn, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, Any]:
    def decide(session: Session) -> dict[str, Any]:
        decision = service.decide(session, principal.tenant_id, task_id, principal.key_id, verdict=body.verdict,
                                  categories=list(body.categories), note=body.note)
        return {"decision": service.decision_view(decision),
                "result": service.result_view(session, principal.tenant_id, decision.trace_id)}

    return run_in_transaction(ctx.sessions, decide)


@router.post("/v1/reviews/{task_id}/reopen", summary="Put a decided task back in the queue (its history stays)",
             operation_id="reopenReview", responses={**_401, **_404, **_409, **_503})
def reopen_review(task_id: TaskId, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, Any]:
    def reopen(session: Session) -> dict[str, Any]:
        service.reopen(session, principal.tenant_id, task_id)
        return _detail(session, principal.tenant_id, task_id)

    return run_in_transaction(ctx.sessions, reopen)


@router.get("/v1/moderation_results/{trace_id}",
            summary="A moderation result as it stands: machine decision, latest human verdict, history",
            operation_id="getModerationResult", responses={**_401, **_404, **_503})
def get_result(
    trace_id: Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9a-f]+$")],
    principal: CurrentPrincipal,
    ctx: Ctx,
) -> dict[str, Any]:
    return run_in_transaction(ctx.sessions, lambda s: service.result_view(s, principal.tenant_id, trace_id))
