"""The review queue's statements on both back ends (Postgres and the embedded SQLite): open once per decision, a
lease held by one reviewer until it expires, a decision only from the holder, labels and queue depth."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from ecoalign.content import Request
from ecoalign.reviews import service
from ecoalign.store import reviews as store
from ecoalign.store import tenants
from ecoalign.store.base import utcnow
from ecoalign.store.db import session_scope


def machine_result(trace_id: str) -> dict:
    return {"flagged": False, "categories": {"illicit": False}, "category_scores": {"illicit": 0.3},
            "category_applied_input_types": {"illicit": ["text"]},
            "ecoalign": {"decision": "scan:uncertain-item-budget-too-small", "trace_id": trace_id, "tokens": 0}}


def test_leases_decisions_and_labels_on_both_back_ends(db: sessionmaker[Session]) -> None:
    with session_scope(db) as s:
        tenant = tenants.create_tenant(s, "t-review")
        tenant_id = tenant.id
        opened = [service.open_review(s, tenant_id=tenant_id, request=Request("pick a lock"),
                                      result=machine_result("a" * 32), reason="scan:uncertain-item-budget-too-small")
                  for _ in range(2)]
    assert opened[0] == f"rev-{'a' * 32}"
    assert opened[1] is None  # one task per machine decision
    task_id = opened[0]
    now = utcnow()
    with session_scope(db) as s:
        assert store.claim(s, tenant_id, task_id, "key-1", lease_s=60, now=now)
        assert not store.claim(s, tenant_id, task_id, "key-2", lease_s=60, now=now + timedelta(seconds=30))
        assert store.decide(s, tenant_id, task_id, "key-2", verdict="flag", categories=[], note=None,
                            now=now + timedelta(seconds=30)) is None
        assert store.queue_depth(s, now + timedelta(seconds=30))["pending"] == 0
        assert store.queue_depth(s, now + timedelta(seconds=61))["pending"] == 1  # expired: back in the queue
        assert store.claim(s, tenant_id, task_id, "key-2", lease_s=60, now=now + timedelta(seconds=61))
        assert store.decide(s, tenant_id, task_id, "key-1", verdict="flag", categories=[], note=None,
                            now=now + timedelta(seconds=62)) is None  # the old holder lost it
        decision = store.decide(s, tenant_id, task_id, "key-2", verdict="flag", categories=["illicit"],
                                note="how-to", now=now + timedelta(seconds=62))
        assert decision is not None
        page = store.list_tasks(s, tenant_id, status="decided", category="illicit", policy_id=None,
                                policy_version=None, limit=10, after=None)
        assert [t.id for t in page.items] == [task_id]
        labels = store.human_labels(s, store.LabelFilter(tenant_id=tenant_id))
    assert [(lab.verdict, lab.categories, lab.item["text"]) for lab in labels] == [("flag", ["illicit"], "pick a lock")]
