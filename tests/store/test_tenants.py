"""``ecoalign.store.tenants``: API keys, and ``reserve_tenant`` + ``settle_tenant``, a hold on the tenant alone (no
job), as moderation's judge calls use it (``TenantRunBudget``). The job-side tenant charges are in test_ledger."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.store import tenants
from ecoalign.store.db import session_scope
from ecoalign.store.models import Tenant, TenantDailyUsage
from tests.store.helpers import new_tenant

Factory = sessionmaker[Session]


@pytest.fixture
def db(db_in_transaction: Factory) -> Factory:
    """One connection suffices here: every test runs in a transaction rolled back at teardown (tests/conftest.py)."""
    return db_in_transaction
DAY = date(2026, 11, 24)


def _counters(factory: Factory, tenant_id: str) -> tuple[int, int, int, int]:
    """(tenant spent, tenant reserved, day spent, day reserved)."""
    with session_scope(factory) as s:
        tenant = s.get(Tenant, tenant_id, populate_existing=True)
        daily = s.get(TenantDailyUsage, (tenant_id, DAY), populate_existing=True)
        assert tenant is not None
        assert daily is not None
        return tenant.tokens_spent, tenant.tokens_reserved, daily.spent, daily.reserved


def _hold(factory: Factory, tenant_id: str, tokens: int) -> bool:
    with session_scope(factory) as s:
        return tenants.reserve_tenant(s, tenant_id, DAY, tokens)


def _settle(factory: Factory, tenant_id: str, held: int, used: int) -> int:
    with session_scope(factory) as s:
        return tenants.settle_tenant(s, tenant_id, DAY, held, used)


def test_settle_releases_the_hold_and_charges_the_real_usage(db: Factory) -> None:
    tenant = new_tenant(db, total=1000, daily=500)
    assert _hold(db, tenant, 300)
    assert _counters(db, tenant) == (0, 300, 0, 300)
    assert _settle(db, tenant, 300, 120) == 120
    assert _counters(db, tenant) == (120, 0, 120, 0)
    assert _hold(db, tenant, 100)
    assert _settle(db, tenant, 100, 0) == 0  # a refund
    assert _counters(db, tenant) == (120, 0, 120, 0)


def test_usage_over_the_budgets_is_charged_only_as_far_as_they_allow(db: Factory) -> None:
    tenant = new_tenant(db, total=1000, daily=200)
    assert _hold(db, tenant, 150)
    assert _settle(db, tenant, 150, 900) == 200  # the daily budget is the tighter one
    assert _counters(db, tenant) == (200, 0, 200, 0)
    unlimited = new_tenant(db)
    assert _hold(db, unlimited, 10)
    assert _settle(db, unlimited, 10, 900) == 900


def test_a_hold_larger_than_the_counters_never_drives_them_negative(db: Factory) -> None:
    tenant = new_tenant(db, total=1000, daily=1000)
    assert _hold(db, tenant, 50)
    assert _settle(db, tenant, 80, 30) == 30
    assert _counters(db, tenant) == (30, 0, 30, 0)


def test_unknown_tenant_and_bad_arguments(db: Factory) -> None:
    with session_scope(db) as s:
        assert tenants.settle_tenant(s, "no-such-tenant", DAY, 10, 10) == 0
        with pytest.raises(ValueError, match="held and used must be >= 0"):
            tenants.settle_tenant(s, "no-such-tenant", DAY, -1, 0)


def test_api_keys(db: Factory) -> None:
    tenant = new_tenant(db)
    with session_scope(db) as s:
        key, secret = tenants.create_api_key(s, tenant, name="ci")
        key_id = key.id
        assert secret.startswith(tenants.API_KEY_PREFIX)
        assert key.prefix == secret[:12]
        assert key.key_hash == tenants.hash_api_key(secret)
        assert secret not in key.key_hash
    with session_scope(db) as s:
        found = tenants.find_api_key(s, secret)
        assert found is not None
        assert found.tenant_id == tenant
        assert tenants.find_api_key(s, secret + "x") is None
        assert tenants.revoke_api_key(s, key_id)
        assert not tenants.revoke_api_key(s, key_id)
    with session_scope(db) as s:
        assert tenants.find_api_key(s, secret) is None
