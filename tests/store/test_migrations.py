"""The schema comes from Alembic only: upgrade/downgrade cycle, idempotence, models == migrations."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from ecoalign.store import migrate
from ecoalign.store.db import make_engine
from ecoalign.store.models import Base

BACKENDS = [pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"]
STORE_TABLES = {"tenants", "tenant_daily_usage", "api_keys", "jobs", "nodes", "edges", "ledger_entries"}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_downgrade_upgrade(backend: str, empty_database_url: Callable[[str], str]) -> None:
    url = empty_database_url(backend)
    assert migrate.current_revision(url) is None
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()
    assert _tables(url) >= STORE_TABLES
    migrate.upgrade(url)  # idempotent: already at head
    assert migrate.is_current(url)
    migrate.downgrade(url, "base")
    assert migrate.current_revision(url) is None
    assert _tables(url) == set()
    migrate.upgrade(url, "head")
    assert _tables(url) >= STORE_TABLES


@pytest.mark.parametrize("backend", BACKENDS)
def test_models_match_migrations(backend: str, empty_database_url: Callable[[str], str]) -> None:
    url = empty_database_url(backend)
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()
    command.check(migrate.alembic_config(url))  # the `alembic check` command: raises on any difference


_UPGRADE_AT = """
import sys, time
from ecoalign.store import migrate
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
migrate.upgrade(sys.argv[1])
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_upgrades_from_processes(backend: str, empty_database_url: Callable[[str], str]) -> None:
    """Several processes starting at once (API, workers) all upgrade the same empty database: one does the
    work, the others wait for it (Postgres advisory lock / SQLite write lock) and then find it at head."""
    url = empty_database_url(backend)
    start_at = time.time() + 3.0  # let every interpreter start, then go together
    procs = [
        subprocess.Popen([sys.executable, "-c", _UPGRADE_AT, url, str(start_at)], stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    assert [code for code, _ in results] == [0, 0, 0], results
    assert migrate.is_current(url)
    assert _tables(url) >= STORE_TABLES


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_upgrades_from_threads(backend: str, empty_database_url: Callable[[str], str]) -> None:
    """In one process, too (Alembic's globals are guarded by a lock in ``migrate``)."""
    url = empty_database_url(backend)
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        barrier.wait()
        try:
            migrate.upgrade(url)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert migrate.is_current(url)


def test_ensure_schema_creates_a_sqlite_file_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'ecoalign.db'}"
    migrate.ensure_schema(url)
    assert migrate.is_current(url)
    assert _tables(url) >= STORE_TABLES
    migrate.ensure_schema(url)  # the CLI calls it on every start
    assert migrate.current_revision(url) == migrate.head_revision()
