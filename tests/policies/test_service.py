"""The policy service on both stores (Postgres and SQLite): versions are numbered once each, also under concurrent
writers on Postgres; the tenant's default and the policy a request resolves to; another tenant's policy is missing."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.policies import service
from ecoalign.policies.schema import PolicyDocument
from ecoalign.store import tenants
from ecoalign.store.db import run_in_transaction, session_scope


def _tenant(db: sessionmaker[Session], name: str) -> str:
    with session_scope(db) as s:
        tenant, _, _ = tenants.create_tenant_with_key(s, name)
        return tenant.id


def test_versions_defaults_and_resolution(db: sessionmaker[Session]) -> None:
    a, b = _tenant(db, "a"), _tenant(db, "b")
    assert run_in_transaction(db, lambda s: service.resolve(s, a)).ref == {"id": "default", "version": 0}
    doc = PolicyDocument.model_validate({"thresholds": {"hate": 0.3}})
    first = run_in_transaction(db, lambda s: service.create_policy(s, a, "first", doc))
    second = run_in_transaction(db, lambda s: service.create_policy(s, a, "second", doc))
    assert first.is_default  # a tenant's first policy is its default
    assert not second.is_default
    newer = PolicyDocument.model_validate({"thresholds": {"hate": 0.7}, "escalation": "value"})
    v2 = run_in_transaction(db, lambda s: service.add_version(s, a, first.id, newer))
    assert v2.version == 2
    policy = run_in_transaction(db, lambda s: service.resolve(s, a))
    assert policy.ref == {"id": first.id, "version": 2}
    assert policy.threshold("hate") == 0.7
    assert policy.escalation == "value"
    old = run_in_transaction(db, lambda s: service.resolve(s, a, first.id, 1))
    assert (old.threshold("hate"), old.escalation) == (0.3, "band")
    run_in_transaction(db, lambda s: service.add_version(s, a, second.id, doc, make_default=True))
    assert run_in_transaction(db, lambda s: service.resolve(s, a)).ref == {"id": second.id, "version": 2}
    with pytest.raises(service.UnknownPolicyChoice):
        run_in_transaction(db, lambda s: service.resolve(s, b, first.id))
    with pytest.raises(service.PolicyNotFound):
        run_in_transaction(db, lambda s: service.get_version(s, a, first.id, 3))
    views, page = run_in_transaction(db, lambda s: service.list_policies(s, a, limit=1, after=None))
    assert [v.id for v in views] == [second.id]
    assert page.has_more
    with pytest.raises(service.UnknownPolicyCursor):
        run_in_transaction(db, lambda s: service.list_policies(s, b, limit=1, after=first.id))


@pytest.mark.postgres
def test_concurrent_writers_get_distinct_version_numbers(pg_clean_engine: object) -> None:
    from ecoalign.store.db import session_factory

    db = session_factory(pg_clean_engine)  # type: ignore[arg-type]
    a = _tenant(db, "racer")
    doc = PolicyDocument()
    pid = run_in_transaction(db, lambda s: service.create_policy(s, a, "p", doc)).id
    got: list[int] = []
    barrier = threading.Barrier(6)

    def add() -> None:
        barrier.wait()
        got.append(run_in_transaction(db, lambda s: service.add_version(s, a, pid, doc)).version)

    threads = [threading.Thread(target=add) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(got) == [2, 3, 4, 5, 6, 7]
    assert run_in_transaction(db, lambda s: service.get_policy(s, a, pid)).latest_version == 7
