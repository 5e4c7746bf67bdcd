"""Bearer API keys: who is calling, and therefore which tenant's jobs they may see.

Keys are looked up by their sha256 (``tenants.hash_api_key``); the secret itself is never stored or logged.
A missing, malformed, unknown or revoked key is one answer, 401, so probing cannot tell them apart.
Every authenticated request is then counted against the tenant's requests-per-second limit of its family (the
chat gateway, moderation, the rest: ``ecoalign.quotas``), so no route can forget the rate limit either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.context import get_ctx
from api.errors import ApiError, ErrorOut
from ecoalign.quotas import Family, TenantQuota
from ecoalign.store import tenants
from ecoalign.store.db import run_in_transaction

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    bearerFormat="API key",
    description="`Authorization: Bearer eco_...`: a key from `ecoalign tenants create` or `ecoalign keys create`",
)

MAX_KEY_CHARS = 256


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: every read and write is scoped to ``tenant_id``."""

    tenant_id: str
    tenant_name: str
    key_id: str
    quota: TenantQuota = field(default_factory=TenantQuota)


def unauthorized(detail: str = "missing or invalid API key") -> ApiError:
    return ApiError(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def require_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """FastAPI dependency: the caller's tenant, or 401."""
    if credentials is None or not credentials.credentials or len(credentials.credentials) > MAX_KEY_CHARS:
        raise unauthorized()
    secret = credentials.credentials
    found = run_in_transaction(get_ctx(request).sessions, lambda s: _lookup(s, secret))
    if found is None:
        raise unauthorized()
    limiter = get_ctx(request).rate_limiter
    if limiter is not None:
        family = family_of(request.url.path)
        limiter.check(found.tenant_id, family, found.quota.per_second(family))
    return found


def family_of(path: str) -> Family:
    """The request-rate counter of a path: the chat gateway and moderation have their own."""
    if path.startswith("/v1/chat/"):
        return Family.CHAT
    if path.startswith("/v1/moderations"):
        return Family.MODERATION
    return Family.API


def _lookup(session: Session, secret: str) -> Principal | None:
    hit = tenants.authenticate(session, secret)
    if hit is None:
        return None
    key, tenant = hit
    quota = TenantQuota.from_row(tenants.get_limits(session, tenant.id))
    return Principal(tenant_id=tenant.id, tenant_name=tenant.name, key_id=key.id, quota=quota)


# Declared on every authenticated route (``app.include_router(..., responses=RATE_LIMITED)``).
RATE_LIMITED: dict[int | str, dict[str, object]] = {
    429: {
        "model": ErrorOut,
        "description": "over one of the tenant's limits (requests per second, concurrent jobs, Batch lines in "
        "flight) or, where a job is started, its daily token budget",
        "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
    }
}


CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
