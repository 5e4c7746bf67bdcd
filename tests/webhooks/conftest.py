"""The API tests' fixtures (the session's Postgres emptied per test, tenants with keys), shared here."""

from tests.api.conftest import broker_url, make_tenant, sessions, tenant_a, tenant_b  # noqa: F401
