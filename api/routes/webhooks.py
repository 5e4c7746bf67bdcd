"""``/v1/webhooks``: a tenant's webhook endpoints, their delivery log and a manual redeliver (the logic is
``ecoalign.webhooks.endpoints``; signing, the outbox and delivery are told in ``ecoalign.webhooks``).

The endpoint's ``secret`` is in the answer of ``POST /v1/webhooks`` and ``POST /v1/webhooks/{id}/rotate-secret``
only. Another tenant's endpoint is answered like a missing one (404).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from api.auth import CurrentPrincipal
from api.context import AppContext, get_ctx
from api.routes.jobs import _401, _422, _503
from api.schemas import ErrorOut, Text, _In
from ecoalign.store.db import run_in_transaction
from ecoalign.webhooks import endpoints
from ecoalign.webhooks.events import EVENTS

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
Ctx = Annotated[AppContext, Depends(get_ctx)]
EndpointId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                                 description="the webhook endpoint's id")]
_404 = {404: {"model": ErrorOut, "description": "no such webhook endpoint (or delivery) for this tenant"}}
EventType = Annotated[str, Field(min_length=1, max_length=64, description=f"one of: {', '.join(EVENTS)}")]


class WebhookCreate(_In):
    url: str = Field(min_length=1, max_length=2048, description="https URL with a public address")
    events: list[EventType] = Field(min_length=1, max_length=len(EVENTS) + 4)
    description: Text | None = Field(None, max_length=500)


class WebhookOut(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    events: list[str]
    description: str | None = None
    created_at: int
    secret_rotated_at: int | None = None
    previous_secret_expires_at: int | None = Field(
        None, description="after a rotation, attempts are signed with the old secret too until then")


class WebhookWithSecret(WebhookOut):
    secret: str = Field(description="whsec_…: verify signatures with it; shown only now")


class WebhookList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WebhookOut]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool


class WebhookDeleted(BaseModel):
    id: str
    object: Literal["webhook_endpoint.deleted"] = "webhook_endpoint.deleted"
    deleted: bool


class DeliveryOut(BaseModel):
    id: str
    object: Literal["webhook_delivery"] = "webhook_delivery"
    event_id: str = Field(description="the webhook-id header: the same on every attempt")
    event_type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_response_code: int | None = None
    last_error: str | None = None
    created_at: int | None = None
    last_attempt_at: int | None = None
    delivered_at: int | None = None
    next_attempt_at: int | None = None


class DeliveryList(BaseModel):
    object: Literal["list"] = "list"
    data: list[DeliveryOut]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool


Limit = Annotated[int, Query(ge=1, le=100, description="page size")]
After = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                                    description="last_id of the previous page")]


@router.post("", response_model=WebhookWithSecret, summary="Register a webhook endpoint (its secret is shown once)",
             operation_id="createWebhook", responses={**_401, 409: {"model": ErrorOut, "description":
                                                                    "the tenant has too many endpoints"},
                                                      **_422, **_503})
def create_webhook(body: WebhookCreate, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, Any]:
    spec = endpoints.EndpointSpec(body.url, list(body.events), body.description)
    return run_in_transaction(
        ctx.sessions, lambda s: endpoints.create_endpoint(s, principal.tenant_id, spec, ctx.settings))


@router.get("", response_model=WebhookList, summary="List the tenant's webhook endpoints, newest first",
            operation_id="listWebhooks", responses={**_401, **_422, **_503})
def list_webhooks(principal: CurrentPrincipal, ctx: Ctx, limit: Limit = 20, after: After = None) -> dict[str, Any]:
    return run_in_transaction(ctx.sessions, lambda s: endpoints.list_endpoints(s, principal.tenant_id, limit, after))


@router.get("/{endpoint_id}", response_model=WebhookOut, summary="Get a webhook endpoint",
            operation_id="getWebhook", responses={**_401, **_404, **_422, **_503})
def get_webhook(endpoint_id: EndpointId, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, Any]:
    return run_in_transaction(
        ctx.sessions, lambda s: endpoints.endpoint_view(endpoints.owned(s, principal.tenant_id, endpoint_id)))


@router.delete("/{endpoint_id}", response_model=WebhookDeleted, summary="Delete a webhook endpoint and its log",
               operation_id="deleteWebhook", responses={**_401, **_404, **_422, **_503})
def delete_webhook(endpoint_id: EndpointId, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, Any]:
    return run_in_transaction(
        ctx.sessions, lambda s: endpoints.delete_endpoint(s, principal.tenant_id, endpoint_id))


@router.post("/{endpoint_id}/rotate-secret", response_model=WebhookWithSecret,
             summary="Replace the endpoint's secret (the new one is shown once; the old one also signs for a while)",
             operation_id="rotateWebhookSecret",
             responses={**_401, **_404, **_422, **_503})
def rotate_secret(endpoint_id: EndpointId, principal: CurrentPrincipal, ctx: Ctx) -> dict[str, Any]:
    return run_in_transaction(
        ctx.sessions, lambda s: endpoints.rotate_secret(s, principal.tenant_id, endpoint_id, ctx.settings))


@router.get("/{endpoint_id}/deliveries", response_model=DeliveryList,
            summary="The endpoint's delivery log, newest first: status, attempts, last response code",
            operation_id="listWebhookDeliveries", responses={**_401, **_404, **_422, **_503})
def list_deliveries(endpoint_id: EndpointId, principal: CurrentPrincipal, ctx: Ctx, limit: Limit = 20,
                    after: After = None) -> dict[str, Any]:
    return run_in_transaction(
        ctx.sessions, lambda s: endpoints.list_deliveries(s, principal.tenant_id, endpoint_id, limit, after))


@router.post("/{endpoint_id}/deliveries/{delivery_id}/redeliver", response_model=DeliveryOut,
             summary="Send a delivery again now (with a new retry window)", operation_id="redeliverWebhook",
             responses={**_401, **_404, **_422, **_503})
def redeliver(endpoint_id: EndpointId, delivery_id: Annotated[int, Path(ge=1, le=2**62)],
              principal: CurrentPrincipal, ctx: Ctx) -> dict[str, Any]:
    return run_in_transaction(
        ctx.sessions,
        lambda s: endpoints.redeliver(s, principal.tenant_id, endpoint_id, delivery_id, ctx.settings))
