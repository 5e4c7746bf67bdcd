"""Bearer API keys: who is calling, and therefore which tenant's jobs they may see.

Keys are looked up by their sha256 (``tenants.hash_api_key``); the secret itself is never stored or logged.
A missing, malformed, unknown or revoked key is one answer, 401, so probing cannot tell them apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.context import get_ctx
from api.errors import ApiError
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
    return found


def _lookup(session: Session, secret: str) -> Principal | None:
    hit = tenants.authenticate(session, secret)
    if hit is None:
        return None
    key, tenant = hit
    return Principal(tenant_id=tenant.id, tenant_name=tenant.name, key_id=key.id)


CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
