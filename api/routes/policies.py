"""``/v1/policies``: a tenant's moderation policies, versioned (the service is ``ecoalign.policies.service``).

``POST /v1/policies`` creates a policy and its version 1 (the tenant's first policy becomes its default, or any
with ``"default": true``); ``POST /v1/policies/{id}/versions`` adds the next version. A version is immutable: no
route changes or deletes one, and moderation results name the ``{id, version}`` they were decided under. A policy
of another tenant is answered like a missing one (404).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from api.auth import CurrentPrincipal
from api.context import AppContext, get_ctx
from api.routes.jobs import _401, _422, _503
from api.schemas import ErrorOut, Text, _In
from ecoalign.policies import service
from ecoalign.policies.schema import PolicyDocument
from ecoalign.store.db import run_in_transaction

router = APIRouter(prefix="/v1/policies", tags=["policies"])
Ctx = Annotated[AppContext, Depends(get_ctx)]
PolicyId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_:-]+$", description="policy id")]
_404 = {404: {"model": ErrorOut, "description": "no such policy (or version) for this tenant"}}


class PolicyCreate(_In):
    name: Text = Field(max_length=200)
    document: PolicyDocument
    default: bool = Field(False, description="make it the tenant's default policy")


class VersionCreate(_In):
    document: PolicyDocument
    default: bool = Field(False, description="make this policy the tenant's default")


class VersionOut(BaseModel):
    object: Literal["policy.version"] = "policy.version"
    policy_id: str
    version: int
    document: dict[str, Any]
    created_at: int


class PolicyOut(BaseModel):
    id: str
    object: Literal["policy"] = "policy"
    name: str
    latest_version: int
    default: bool
    created_at: int
    latest: VersionOut | None = None


class PolicyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[PolicyOut]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool


@router.post(
    "", response_model=PolicyOut, status_code=201, summary="Create a moderation policy (its version 1)",
    operation_id="createPolicy", responses={**_401, **_422, **_503},
)
def create_policy(body: PolicyCreate, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, Any]:
    def write(session: Session) -> dict[str, Any]:
        view = service.create_policy(session, principal.tenant_id, body.name, body.document, make_default=body.default)
        return view.to_json()

    return run_in_transaction(ctx.sessions, write)


@router.get(
    "", response_model=PolicyList, summary="List the tenant's policies, newest first", operation_id="listPolicies",
    responses={**_401, **_422, **_503},
)
def list_policies(
    principal: CurrentPrincipal,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=100, description="page size")] = 20,
    after: Annotated[
        str | None, Query(max_length=40, pattern=r"^[A-Za-z0-9_:-]+$", description="last_id of the previous page")
    ] = None,
) -> dict[str, Any]:
    def read(session: Session) -> dict[str, Any]:
        views, page = service.list_policies(session, principal.tenant_id, limit=limit, after=after)
        return {"object": "list", "data": [v.to_json() for v in views], "first_id": page.first_id,
                "last_id": page.last_id, "has_more": page.has_more}

    return run_in_transaction(ctx.sessions, read)


@router.get(
    "/{policy_id}", response_model=PolicyOut, summary="Get a policy with its latest version",
    operation_id="getPolicy", responses={**_401, **_404, **_422, **_503},
)
def get_policy(policy_id: PolicyId, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, Any]:
    return run_in_transaction(ctx.sessions, lambda s: service.get_policy(s, principal.tenant_id, policy_id).to_json())


@router.post(
    "/{policy_id}/versions", response_model=VersionOut, status_code=201,
    summary="Add the policy's next version (earlier versions never change)", operation_id="createPolicyVersion",
    responses={**_401, **_404, **_422, **_503},
)
def create_version(policy_id: PolicyId, body: VersionCreate, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, Any]:
    def write(session: Session) -> dict[str, Any]:
        view = service.add_version(session, principal.tenant_id, policy_id, body.document, make_default=body.default)
        return view.to_json()

    return run_in_transaction(ctx.sessions, write)


@router.get(
    "/{policy_id}/versions/{version}", response_model=VersionOut, summary="Get one version of a policy",
    operation_id="getPolicyVersion", responses={**_401, **_404, **_422, **_503},
)
def get_version(
    policy_id: PolicyId, version: Annotated[int, Path(ge=1, le=10**9)], principal: CurrentPrincipal, ctx: Ctx
) -> dict[str, Any]:
    return run_in_transaction(
        ctx.sessions, lambda s: service.get_version(s, principal.tenant_id, policy_id, version).to_json()
    )
