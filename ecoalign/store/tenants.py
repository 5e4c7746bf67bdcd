"""Tenant and API-key helpers the API and the admin CLI need beyond ``repository``'s create/find/revoke.

Read-mostly: the budget counters themselves move only through ``ledger`` (reserve/settle/refund), so nothing
here writes them. ``remaining`` is advisory (no lock): the API uses it to refuse a job that could not even start,
while the ledger's conditional UPDATEs remain the only enforcement that counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session

from ecoalign.store import repository
from ecoalign.store.base import utcnow
from ecoalign.store.models import ApiKey, Tenant, TenantDailyUsage

KEYS = cast(Table, ApiKey.__table__)


class AmbiguousKey(LookupError):
    """A key prefix that matches more than one active key: revoke by a longer prefix or the full key."""


@dataclass(frozen=True)
class TenantBudget:
    """What a tenant may still reserve; ``None`` means that budget is unlimited."""

    total_remaining: int | None
    daily_remaining: int | None
    day: date

    def covers(self, tokens: int) -> bool:
        return all(r is None or r >= tokens for r in (self.total_remaining, self.daily_remaining))

    @property
    def short_of(self) -> str | None:
        """Which budget is the binding one when it is exhausted: ``"total"`` wins over ``"daily"``."""
        if self.total_remaining is not None and (
            self.daily_remaining is None or self.total_remaining <= self.daily_remaining
        ):
            return "total"
        return "daily" if self.daily_remaining is not None else None


@dataclass(frozen=True)
class TenantSummary:
    tenant: Tenant
    active_keys: int


def create_tenant_with_key(
    session: Session,
    name: str,
    *,
    token_budget_total: int | None = None,
    token_budget_daily: int | None = None,
    key_name: str = "default",
) -> tuple[Tenant, ApiKey, str]:
    """A tenant and its first key in one transaction: ``(tenant, key row, secret)``."""
    tenant = repository.create_tenant(
        session, name, token_budget_total=token_budget_total, token_budget_daily=token_budget_daily
    )
    key, secret = repository.create_api_key(session, tenant.id, name=key_name)
    return tenant, key, secret


def find_tenant(session: Session, ref: str) -> Tenant | None:
    """A tenant by id or by name (the CLI accepts either)."""
    return session.scalars(select(Tenant).where((Tenant.id == ref) | (Tenant.name == ref))).first()


def get_tenant(session: Session, tenant_id: str) -> Tenant | None:
    return session.get(Tenant, tenant_id)


def list_tenants(session: Session) -> list[TenantSummary]:
    """Every tenant with its number of unrevoked keys, oldest first."""
    active = (
        select(ApiKey.tenant_id, func.count().label("n"))
        .where(ApiKey.revoked_at.is_(None))
        .group_by(ApiKey.tenant_id)
        .subquery()
    )
    rows = session.execute(
        select(Tenant, func.coalesce(active.c.n, 0))
        .outerjoin(active, active.c.tenant_id == Tenant.id)
        .order_by(Tenant.created_at, Tenant.name)
    ).all()
    return [TenantSummary(tenant, int(n)) for tenant, n in rows]


def authenticate(session: Session, secret: str) -> tuple[ApiKey, Tenant] | None:
    """The active key with this secret and its tenant, or None (unknown, revoked, or tenant gone)."""
    key = repository.find_api_key(session, secret)
    if key is None:
        return None
    tenant = session.get(Tenant, key.tenant_id)
    return (key, tenant) if tenant is not None else None


def revoke_key_by_prefix(session: Session, prefix: str) -> ApiKey | None:
    """Revoke the one active key whose printed prefix (or full secret) is ``prefix``; None if there is none.

    Raises ``AmbiguousKey`` when several active keys share the prefix, so a short prefix never revokes a
    key the operator did not mean.
    """
    if len(prefix) > 16:  # a full secret: match its hash, exactly one key or none
        key = repository.find_api_key(session, prefix)
        matches = [key] if key is not None else []
    else:
        matches = list(
            session.scalars(
                select(ApiKey).where(ApiKey.revoked_at.is_(None), ApiKey.prefix.startswith(prefix, autoescape=True))
            )
        )
    if not matches:
        return None
    if len(matches) > 1:
        raise AmbiguousKey(f"{len(matches)} active keys start with {prefix!r}; give a longer prefix")
    key = matches[0]
    session.execute(update(KEYS).where(KEYS.c.id == key.id, KEYS.c.revoked_at.is_(None)).values(revoked_at=utcnow()))
    return key


def remaining(session: Session, tenant_id: str, *, day: date | None = None) -> TenantBudget:
    """Tokens the tenant may still reserve in total and today (UTC), from the committed counters."""
    day = day or utcnow().date()
    tenant = session.get(Tenant, tenant_id, populate_existing=True)
    if tenant is None:
        raise repository.NotFound(f"no tenant {tenant_id}")
    total = (
        None
        if tenant.token_budget_total is None
        else tenant.token_budget_total - tenant.tokens_spent - tenant.tokens_reserved
    )
    daily: int | None = None
    if tenant.token_budget_daily is not None:
        used = session.execute(
            select(TenantDailyUsage.spent + TenantDailyUsage.reserved).where(
                TenantDailyUsage.tenant_id == tenant_id, TenantDailyUsage.day == day
            )
        ).scalar_one_or_none()
        daily = tenant.token_budget_daily - int(used or 0)
    return TenantBudget(total, daily, day)
