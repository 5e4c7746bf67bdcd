"""A tenant's webhook endpoints: what ``/v1/webhooks`` does (the API only parses and shapes).

The secret is shown once, when an endpoint is created or its secret rotated; reads never show it. A URL is checked
when it is registered (``targets.check_target``: a refused target is a ``WebhookInputError`` naming ``url``) and
again, pinned, on every attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from ecoalign.settings import Settings
from ecoalign.store import webhooks as store
from ecoalign.store.base import utcnow
from ecoalign.store.pagination import InvalidCursor
from ecoalign.store.webhook_models import WebhookDelivery, WebhookEndpoint
from ecoalign.webhooks.events import EVENTS, unknown_events
from ecoalign.webhooks.signing import new_secret
from ecoalign.webhooks.targets import TargetRefused, check_target


class WebhookInputError(ValueError):
    """A bad endpoint definition; ``field`` names what is wrong (``url``, ``events``)."""

    def __init__(self, field: str, message: str, *, where: str = "body") -> None:
        super().__init__(message)
        self.field = field
        self.where = where  # "body" or "query"


class EndpointNotFound(LookupError):
    """No such endpoint (or delivery) for this tenant; another tenant's is answered the same."""


class TooManyEndpoints(ValueError):
    """The tenant already has ``ECOALIGN_WEBHOOK_MAX_ENDPOINTS`` endpoints."""


@dataclass(frozen=True)
class EndpointSpec:
    url: str
    events: list[str]
    description: str | None = None


def endpoint_view(endpoint: WebhookEndpoint, *, secret: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": endpoint.id, "object": "webhook_endpoint", "url": endpoint.url, "events": list(endpoint.events),
        "description": endpoint.description, "created_at": int(endpoint.created_at.timestamp()),
        "secret_rotated_at": int(endpoint.secret_rotated_at.timestamp()) if endpoint.secret_rotated_at else None,
        "previous_secret_expires_at": int(endpoint.previous_secret_expires_at.timestamp())
        if endpoint.previous_secret_expires_at else None,
    }
    if secret:
        view["secret"] = endpoint.secret
    return view


def delivery_view(delivery: WebhookDelivery, event_type: str) -> dict[str, Any]:
    def ts(value: Any) -> int | None:
        return int(value.timestamp()) if value is not None else None

    return {
        "id": str(delivery.id), "object": "webhook_delivery", "event_id": delivery.event_id, "event_type": event_type,
        "status": delivery.status, "attempts": delivery.attempts, "last_response_code": delivery.last_status_code,
        "last_error": delivery.last_error, "created_at": ts(delivery.created_at),
        "last_attempt_at": ts(delivery.last_attempt_at), "delivered_at": ts(delivery.delivered_at),
        "next_attempt_at": ts(delivery.next_attempt_at) if delivery.status == store.PENDING else None,
    }


def validate(spec: EndpointSpec, settings: Settings) -> None:
    unknown = unknown_events(spec.events)
    if unknown or not spec.events:
        raise WebhookInputError(
            "events", f"unknown event types {unknown}; expected some of {', '.join(EVENTS)}" if unknown
            else "events must name at least one event type")
    try:
        check_target(spec.url, loopback=settings.webhook_allow_loopback)
    except TargetRefused as exc:
        raise WebhookInputError("url", str(exc)) from None


def create_endpoint(session: Session, tenant_id: str, spec: EndpointSpec, settings: Settings) -> dict[str, Any]:
    """Register an endpoint; its view with the secret (the only time it is shown)."""
    validate(spec, settings)
    if store.count_endpoints(session, tenant_id) >= settings.webhook_max_endpoints:
        raise TooManyEndpoints(f"a tenant may have at most {settings.webhook_max_endpoints} webhook endpoints")
    endpoint = store.add_endpoint(session, WebhookEndpoint(
        tenant_id=tenant_id, url=spec.url, events=list(dict.fromkeys(spec.events)), description=spec.description,
        secret=new_secret(), created_at=utcnow()))
    return endpoint_view(endpoint, secret=True)


def owned(session: Session, tenant_id: str, endpoint_id: str) -> WebhookEndpoint:
    endpoint = store.owned_endpoint(session, endpoint_id, tenant_id)
    if endpoint is None:
        raise EndpointNotFound(f"no webhook endpoint {endpoint_id}")
    return endpoint


def list_endpoints(session: Session, tenant_id: str, limit: int, after: str | None) -> dict[str, Any]:
    try:
        return store.endpoint_page(session, tenant_id, limit, after).openai_list(endpoint_view)
    except InvalidCursor:
        raise WebhookInputError("after", f"unknown cursor {after!r}", where="query") from None


def delete_endpoint(session: Session, tenant_id: str, endpoint_id: str) -> dict[str, Any]:
    if not store.delete_endpoint(session, endpoint_id, tenant_id):
        raise EndpointNotFound(f"no webhook endpoint {endpoint_id}")
    return {"id": endpoint_id, "object": "webhook_endpoint.deleted", "deleted": True}


def rotate_secret(session: Session, tenant_id: str, endpoint_id: str, settings: Settings) -> dict[str, Any]:
    """A new secret (shown once); attempts from now on are signed with it, and also with the old one for
    ``ECOALIGN_WEBHOOK_SECRET_GRACE_S`` so the receiver can switch without rejecting a delivery."""
    endpoint = owned(session, tenant_id, endpoint_id)
    store.set_secret(session, endpoint.id, new_secret(), utcnow(), settings.webhook_secret_grace_s)
    return endpoint_view(owned(session, tenant_id, endpoint_id), secret=True)


def list_deliveries(session: Session, tenant_id: str, endpoint_id: str, limit: int,
                    after: str | None) -> dict[str, Any]:
    owned(session, tenant_id, endpoint_id)
    page = store.delivery_page(session, endpoint_id, limit, after)
    data = [delivery_view(d, event_type) for d, event_type in page.items]
    return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None, "has_more": page.has_more}


def redeliver(session: Session, tenant_id: str, endpoint_id: str, delivery_id: int,
              settings: Settings) -> dict[str, Any]:
    """Send a delivery again (delivered or failed ones too): pending now, with a fresh retry window."""
    owned(session, tenant_id, endpoint_id)
    delivery = store.owned_delivery(session, endpoint_id, delivery_id)
    if delivery is None:
        raise EndpointNotFound(f"no delivery {delivery_id} of webhook endpoint {endpoint_id}")
    store.reopen_delivery(session, delivery_id, utcnow(), settings.webhook_retry_window_s)
    page = store.delivery_page(session, endpoint_id, 1, str(delivery_id + 1))
    return delivery_view(*page.items[0])
