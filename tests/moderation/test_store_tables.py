"""Migration 0002 (moderation traces, files, batches, batch items) on Postgres and SQLite: upgrade and downgrade
between 0001 and 0002 with data in 0001's tables, and the constraints that carry meaning."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine.reflection import Inspector
from sqlalchemy.exc import IntegrityError

from ecoalign.store import migrate
from ecoalign.store.base import utcnow
from ecoalign.store.batch_models import Batch, BatchItem, ModerationTrace, StoredFile
from ecoalign.store.db import make_engine
from ecoalign.store.models import Tenant
from tests.store.helpers import inspected

BACKENDS = [pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"]
NEW_TABLES = {"moderation_traces", "files", "batches", "batch_items"}


def _tables(url: str) -> set[str]:
    return set(inspected(url, Inspector.get_table_names))


@pytest.mark.parametrize("backend", BACKENDS)
def test_0002_up_and_down_keeps_0001_data(backend: str, empty_database_url: Callable[[str], str]) -> None:
    url = empty_database_url(backend)
    migrate.upgrade(url, "0001")
    assert not NEW_TABLES & _tables(url)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(Tenant.__table__).values(
                    id="t1",
                    name="acme",
                    tokens_spent=0,
                    tokens_reserved=0,
                    created_at=_now(),
                )
            )
        migrate.upgrade(url, "0002")
        assert _tables(url) >= NEW_TABLES
        migrate.downgrade(url, "0001")
        assert not NEW_TABLES & _tables(url)
        with engine.connect() as conn:
            assert conn.execute(select(Tenant.__table__.c.name)).scalar_one() == "acme"
        migrate.upgrade(url)
        assert migrate.is_current(url)
        assert _tables(url) >= NEW_TABLES
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_constraints(backend: str, empty_database_url: Callable[[str], str]) -> None:
    url = empty_database_url(backend)
    migrate.upgrade(url)
    engine = make_engine(url)
    files, batches, items, traces = (m.__table__ for m in (StoredFile, Batch, BatchItem, ModerationTrace))
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(files).values(
                    id="file-1", purpose="batch", filename="in.jsonl", bytes=3, content=b"{}\n", created_at=_now()
                )
            )
            conn.execute(
                insert(batches).values(
                    id="batch_1",
                    input_file_id="file-1",
                    endpoint="/v1/moderations",
                    completion_window="24h",
                    status="validating",
                    created_at=_now(),
                    updated_at=_now(),
                )
            )
            conn.execute(
                insert(items).values(
                    batch_id="batch_1",
                    custom_id="a",
                    line_no=1,
                    status="completed",
                    result={"status_code": 200},
                    created_at=_now(),
                )
            )
            conn.execute(
                insert(items).values(
                    batch_id="batch_1",
                    custom_id=None,
                    line_no=2,
                    status="failed",
                    error={"code": "invalid_json"},
                    created_at=_now(),
                )
            )
            conn.execute(
                insert(traces).values(
                    trace_id="x" * 32,
                    run_id="batch_1",
                    custom_id="a",
                    flagged=True,
                    decision="scan:confident-unsafe",
                    result={},
                    trace={},
                    created_at=_now(),
                )
            )
        rejected = [
            (items, {"batch_id": "batch_1", "custom_id": "a", "line_no": 3, "status": "pending"}),  # dup custom_id
            (items, {"batch_id": "batch_1", "custom_id": "b", "line_no": 1, "status": "pending"}),  # dup line_no
            (items, {"batch_id": "batch_1", "custom_id": "c", "line_no": 4, "status": "weird"}),
            (files, {"id": "file-2", "purpose": "batch", "filename": "x", "bytes": 1}),  # neither content nor path
            (files, {"id": "file-3", "purpose": "batch", "filename": "x", "bytes": 1, "content": b"x", "path": "/x"}),
            (files, {"id": "file-4", "purpose": "nope", "filename": "x", "bytes": 1, "path": "/x"}),
            (
                batches,
                {
                    "id": "batch_2",
                    "input_file_id": "file-1",
                    "endpoint": "/v1/moderations",
                    "completion_window": "24h",
                    "status": "validating",
                    "requests_total": 1,
                    "requests_completed": 2,
                },
            ),
            (
                batches,
                {
                    "id": "batch_3",
                    "input_file_id": "file-404",
                    "endpoint": "/v1/moderations",
                    "completion_window": "24h",
                    "status": "validating",
                },
            ),  # no such input file
        ]
        for table, values in rejected:
            values = {"created_at": _now(), **({"updated_at": _now()} if table is batches else {}), **values}
            with pytest.raises(IntegrityError), engine.begin() as conn:
                conn.execute(insert(table).values(**values))
        with engine.begin() as conn:  # a second NULL custom_id is fine: only known custom_ids must be unique
            conn.execute(
                insert(items).values(batch_id="batch_1", custom_id=None, line_no=5, status="failed", created_at=_now())
            )
        with engine.begin() as conn:  # deleting a batch deletes its items
            conn.execute(batches.delete().where(batches.c.id == "batch_1"))
            assert conn.execute(select(items.c.id)).all() == []
    finally:
        engine.dispose()


def _now() -> datetime:
    return utcnow()
