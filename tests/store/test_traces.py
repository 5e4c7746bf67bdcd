"""The trace query on both back ends: the filters that read JSON columns (categories, evaluators, the moderation
scan's safety) and the keyset pages over the union of jobs and moderation traces, on Postgres and SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.store import traces
from ecoalign.store.db import session_scope
from ecoalign.store.pagination import InvalidCursor
from tests.audit import traces as t


@pytest.fixture
def stored(db: sessionmaker[Session]) -> dict[str, str]:
    return {
        "job": t.store_job(db, tenant_id=None, prompt="p", steps=[("s", 0.9)], answer=("a", 0.8),
                           categories={"illicit/violent": 0.7}, evaluator="node:x+judge:m"),
        "moderation": t.store_moderation(db, tenant_id=None, safety=0.3, category_scores={"self-harm/intent": 0.6},
                                         evaluator="llm-judge:m"),
        "plain": t.store_job(db, tenant_id=None, prompt="q", steps=[], answer=("b", 0.99), strategy="direct"),
    }


def _ids(db: sessionmaker[Session], **filters: object) -> set[str]:
    with session_scope(db) as s:
        page = traces.list_traces(s, traces.Scope(), traces.TraceFilter(**filters), limit=50)  # type: ignore[arg-type]
        return {row.id for row in page.items}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, {"job", "moderation", "plain"}),
        ({"category": "illicit/violent"}, {"job"}),
        ({"category": "self-harm/intent"}, {"moderation"}),
        ({"evaluator": "judge:m"}, {"job", "moderation"}),
        ({"evaluator": "%"}, set()),  # a LIKE wildcard is a plain character here
        ({"max_path_safety": 0.5}, {"moderation"}),
        ({"min_path_safety": 0.85}, {"plain"}),
        ({"kind": "moderation", "category": "illicit/violent"}, set()),
    ],
)
def test_filters_read_the_json_columns_on_both_back_ends(
    db: sessionmaker[Session], stored: dict[str, str], filters: dict[str, object], expected: set[str]
) -> None:
    assert _ids(db, **filters) == {stored[name] for name in expected}


def test_pages_of_the_union_and_a_cursor_from_another_scope(db: sessionmaker[Session], stored: dict[str, str]) -> None:
    with session_scope(db) as s:
        seen = [row.id for row in traces.iter_traces(s, traces.Scope(), traces.TraceFilter(), page_size=1)]
        assert sorted(seen) == sorted(stored.values())
        with pytest.raises(InvalidCursor):
            traces.list_traces(s, traces.Scope(tenant_id="someone"), traces.TraceFilter(), limit=1,
                               after=stored["job"])
