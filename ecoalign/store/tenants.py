"""The tenant concept in one place: tenants, their API keys, their token budgets and daily usage.

* **Tenants and keys**: create, find, list, authenticate, revoke. Only the sha256 of a key's secret is stored
  (``hash_api_key``); the secret is shown once, when the key is created.
* **Budget reads**: ``remaining`` is advisory (no lock): the API uses it to refuse a job that could not even
  start, while the conditional UPDATEs below remain the only enforcement that counts.
* **Budget counters** (``tenants.tokens_*`` and ``tenant_daily_usage``): they move only through the conditional
  UPDATEs here, called by the ledger (``ledger.reserve``/``settle``/``refund`` for a job's calls, in the ledger's
  lock order: job, then tenant, then the tenant's day) and by tenant-only holds (``reserve_tenant`` /
  ``settle_tenant``: e.g. a moderation's judge call, which has no job).

This module imports nothing of ``ledger`` or ``repository`` (the ledger imports it): keep it that way.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from ecoalign.store.base import new_id, utcnow
from ecoalign.store.db import dialect_insert
from ecoalign.store.errors import NotFound
from ecoalign.store.models import ApiKey, Tenant, TenantDailyUsage
from ecoalign.store.quota_models import LIMIT_COLUMNS, TenantLimits

KEYS = cast(Table, ApiKey.__table__)
TENANTS = cast(Table, Tenant.__table__)
DAILY = cast(Table, TenantDailyUsage.__table__)
API_KEY_PREFIX = "eco_"


class AmbiguousKey(LookupError):
    """A key prefix that matches more than one active key: revoke by a longer prefix or the full key."""


def _rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


# -- tenants and API keys ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TenantSummary:
    tenant: Tenant
    active_keys: int


def hash_api_key(secret: str) -> str:
    """sha256 hex of the secret: what ``api_keys.key_hash`` stores (the secret itself is never stored)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_tenant(
    session: Session,
    name: str,
    *,
    token_budget_total: int | None = None,
    token_budget_daily: int | None = None,
) -> Tenant:
    tenant = Tenant(
        id=new_id(),
        name=name,
        token_budget_total=token_budget_total,
        token_budget_daily=token_budget_daily,
        tokens_spent=0,
        tokens_reserved=0,
    )
    session.add(tenant)
    session.flush()
    return tenant


def create_api_key(session: Session, tenant_id: str, *, name: str = "") -> tuple[ApiKey, str]:
    """A new key for the tenant: ``(row, secret)``. The secret is shown once; only its hash is stored."""
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(id=new_id(), tenant_id=tenant_id, key_hash=hash_api_key(secret), prefix=secret[:12], name=name)
    session.add(key)
    session.flush()
    return key, secret


def create_tenant_with_key(
    session: Session,
    name: str,
    *,
    token_budget_total: int | None = None,
    token_budget_daily: int | None = None,
    key_name: str = "default",
) -> tuple[Tenant, ApiKey, str]:
    """A tenant and its first key in one transaction: ``(tenant, key row, secret)``."""
    tenant = create_tenant(session, name, token_budget_total=token_budget_total, token_budget_daily=token_budget_daily)
    key, secret = create_api_key(session, tenant.id, name=key_name)
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


def find_api_key(session: Session, secret: str) -> ApiKey | None:
    """The unrevoked key with this secret, or None."""
    return session.scalars(
        select(ApiKey).where(ApiKey.key_hash == hash_api_key(secret), ApiKey.revoked_at.is_(None))
    ).first()


def authenticate(session: Session, secret: str) -> tuple[ApiKey, Tenant] | None:
    """The active key with this secret and its tenant, or None (unknown, revoked, or tenant gone)."""
    key = find_api_key(session, secret)
    if key is None:
        return None
    tenant = session.get(Tenant, key.tenant_id)
    return (key, tenant) if tenant is not None else None


def revoke_api_key(session: Session, key_id: str) -> bool:
    done = session.execute(
        update(KEYS).where(KEYS.c.id == key_id, KEYS.c.revoked_at.is_(None)).values(revoked_at=utcnow())
    )
    return _rowcount(done) == 1


def revoke_key_by_prefix(session: Session, prefix: str) -> ApiKey | None:
    """Revoke the one active key whose printed prefix (or full secret) is ``prefix``; None if there is none.

    Raises ``AmbiguousKey`` when several active keys share the prefix, so a short prefix never revokes a
    key the operator did not mean.
    """
    if len(prefix) > 16:  # a full secret: match its hash, exactly one key or none
        key = find_api_key(session, prefix)
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


# -- budget reads --------------------------------------------------------------------------------------------------
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


def remaining(session: Session, tenant_id: str, *, day: date | None = None) -> TenantBudget:
    """Tokens the tenant may still reserve in total and today (UTC), from the committed counters."""
    day = day or utcnow().date()
    tenant = session.get(Tenant, tenant_id, populate_existing=True)
    if tenant is None:
        raise NotFound(f"no tenant {tenant_id}")
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


# -- budget counters -------------------------------------------------------------------------------------------------
class TenantCounters(NamedTuple):
    """A tenant's budgets and counters, and its day's, as locked by ``lock_counters``."""

    budget_total: int | None
    budget_daily: int | None
    spent: int
    reserved: int
    day_spent: int
    day_reserved: int


def ensure_daily_row(session: Session, tenant_id: str, day: date) -> None:
    session.execute(
        dialect_insert(session, DAILY)
        .values(tenant_id=tenant_id, day=day, spent=0, reserved=0)
        .on_conflict_do_nothing()
    )


def lock_counters(session: Session, tenant_id: str, day: date) -> TenantCounters | None:
    """Lock the tenant's row, then its day's row (created if missing), and read both; None for no such tenant.

    The locks are ``FOR NO KEY UPDATE`` (what an ``UPDATE`` of the counters takes anyway), not ``FOR UPDATE``: a
    foreign-key check on a row that names the tenant (a job's second ``UPDATE`` in one transaction, a new ledger
    row) holds ``KEY SHARE`` on the tenant's row until commit, and ``FOR UPDATE`` conflicts with it. Every
    transaction of a tenant's job that first updated its job row twice and then locked the tenant waited on all
    the others' ``KEY SHARE``: a deadlock among all of them (``benchmarks/chaos.py`` stalled a tenant's jobs so).
    ``NO KEY UPDATE`` still serialises the writers of the counters.
    """
    row = session.execute(
        select(TENANTS.c.token_budget_total, TENANTS.c.token_budget_daily, TENANTS.c.tokens_spent,
               TENANTS.c.tokens_reserved)
        .where(TENANTS.c.id == tenant_id)
        .with_for_update(key_share=True)
    ).first()
    if row is None:
        return None
    ensure_daily_row(session, tenant_id, day)
    daily = session.execute(
        select(DAILY.c.spent, DAILY.c.reserved)
        .where(DAILY.c.tenant_id == tenant_id, DAILY.c.day == day)
        .with_for_update(key_share=True)
    ).one()
    return TenantCounters(row.token_budget_total, row.token_budget_daily, int(row.tokens_spent),
                          int(row.tokens_reserved), int(daily.spent), int(daily.reserved))


def capped_charge(charge: int, tenant: TenantCounters, held: int, day_held: int) -> int:
    """``charge`` capped by what the tenant's total and daily budgets allow once ``held`` is released."""
    if tenant.budget_total is not None:
        charge = min(charge, tenant.budget_total - tenant.spent - (tenant.reserved - held))
    if tenant.budget_daily is not None:
        charge = min(charge, tenant.budget_daily - tenant.day_spent - (tenant.day_reserved - day_held))
    return charge


def reserve_tenant(session: Session, tenant_id: str, day: date, tokens: int) -> bool:
    """Hold ``tokens`` on the tenant's total then daily counters; False if either cannot cover them (the caller
    rolls back to its savepoint, since the total may already have moved)."""
    row = session.execute(
        update(TENANTS)
        .where(
            TENANTS.c.id == tenant_id,
            or_(
                TENANTS.c.token_budget_total.is_(None),
                TENANTS.c.tokens_spent + TENANTS.c.tokens_reserved + tokens <= TENANTS.c.token_budget_total,
            ),
        )
        .values(tokens_reserved=TENANTS.c.tokens_reserved + tokens)
        .returning(TENANTS.c.token_budget_daily)
    ).first()
    if row is None:
        return False
    daily_budget: int | None = row[0]
    ensure_daily_row(session, tenant_id, day)
    conditions = [DAILY.c.tenant_id == tenant_id, DAILY.c.day == day]
    if daily_budget is not None:
        conditions.append(DAILY.c.spent + DAILY.c.reserved + tokens <= daily_budget)
    done = session.execute(update(DAILY).where(*conditions).values(reserved=DAILY.c.reserved + tokens))
    return _rowcount(done) == 1


def move_total(session: Session, tenant_id: str, *, held: int, charge: int) -> bool:
    """Release ``held`` reserved tokens and add ``charge`` spent ones on the tenant's total counters, never beyond
    its total budget; False (nothing changed) if the counters do not allow it: someone bypassed the ledger."""
    done = session.execute(
        update(TENANTS)
        .where(
            TENANTS.c.id == tenant_id,
            TENANTS.c.tokens_reserved >= held,
            or_(
                TENANTS.c.token_budget_total.is_(None),
                TENANTS.c.tokens_spent + TENANTS.c.tokens_reserved - held + charge <= TENANTS.c.token_budget_total,
            ),
        )
        .values(tokens_reserved=TENANTS.c.tokens_reserved - held, tokens_spent=TENANTS.c.tokens_spent + charge)
    )
    return _rowcount(done) == 1


def move_day(session: Session, tenant_id: str, day: date, *, held: int, charge: int) -> bool:
    """``move_total`` for the tenant's ``day`` counters."""
    done = session.execute(
        update(DAILY)
        .where(DAILY.c.tenant_id == tenant_id, DAILY.c.day == day, DAILY.c.reserved >= held)
        .values(reserved=DAILY.c.reserved - held, spent=DAILY.c.spent + charge)
    )
    return _rowcount(done) == 1


def settle_tenant(session: Session, tenant_id: str, day: date, held: int, used: int) -> int:
    """Settle a hold that ``reserve_tenant`` put on the tenant alone (no job, no ledger row: e.g. a moderation's
    judge call): release ``held`` from the tenant's total and ``day`` counters and charge ``used``, never beyond
    either budget (the rest is the caller's overrun). Returns the tokens charged; 0 for an unknown tenant.

    The same charge rule and lock order (tenant, then its day) as ``ledger.settle``. ``held`` is clamped to what
    the counters still hold, so a settle can never drive them negative.
    """
    if held < 0 or used < 0:
        raise ValueError("held and used must be >= 0")
    tenant = lock_counters(session, tenant_id, day)
    if tenant is None:
        return 0
    held = min(held, tenant.reserved)
    day_held = min(held, tenant.day_reserved)
    charge = max(capped_charge(used, tenant, held, day_held), 0)
    session.execute(
        update(TENANTS)
        .where(TENANTS.c.id == tenant_id)
        .values(tokens_reserved=TENANTS.c.tokens_reserved - held, tokens_spent=TENANTS.c.tokens_spent + charge)
    )
    session.execute(
        update(DAILY)
        .where(DAILY.c.tenant_id == tenant_id, DAILY.c.day == day)
        .values(reserved=DAILY.c.reserved - day_held, spent=DAILY.c.spent + charge)
    )
    return charge


def reserve_tenant_tokens(session: Session, tenant_id: str, day: date, tokens: int) -> bool:
    """Hold ``tokens`` on the tenant's total and daily counters, or change nothing and return False.

    ``reserve_tenant`` inside a savepoint: it may have moved the total before the daily check failed.
    """
    savepoint = session.begin_nested()
    if not reserve_tenant(session, tenant_id, day, tokens):
        savepoint.rollback()
        return False
    savepoint.commit()
    return True


# -- rate and concurrency limits (issue 15) --------------------------------------------------------------------------
def get_limits(session: Session, tenant_id: str) -> TenantLimits | None:
    """The tenant's limits row, or None: no limit is set."""
    return session.get(TenantLimits, tenant_id)


def set_limits(session: Session, tenant_id: str, values: dict[str, int | None]) -> TenantLimits:
    """Set (an int) or clear (None) the named limits of the tenant; the others keep their values."""
    unknown = set(values) - set(LIMIT_COLUMNS)
    if unknown:
        raise ValueError(f"unknown limits: {', '.join(sorted(unknown))}")
    row = session.get(TenantLimits, tenant_id, with_for_update=True)
    if row is None:
        row = TenantLimits(tenant_id=tenant_id)
        session.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    row.updated_at = utcnow()
    session.flush()
    return row
