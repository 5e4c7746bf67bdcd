"""The schema comes from Alembic only: upgrade/downgrade cycle, idempotence, models == migrations."""

from __future__ import annotations

import shutil
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
from sqlalchemy import text
from sqlalchemy.engine.reflection import Inspector

from ecoalign.engine.graph import NodeKind, node_id
from ecoalign.store import migrate, repository, schema
from ecoalign.store.db import make_engine, session_factory, session_scope
from tests.store.helpers import inspected

BACKENDS = [pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"]
STORE_TABLES = {"tenants", "tenant_daily_usage", "api_keys", "jobs", "nodes", "edges", "ledger_entries"}


def _tables(url: str) -> set[str]:
    return set(inspected(url, Inspector.get_table_names)) - {"alembic_version"}


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
            assert compare_metadata(context, schema.metadata) == []
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


def _node_indexes(url: str) -> set[str]:
    return {i["name"] for i in inspected(url, lambda inspector: inspector.get_indexes("nodes"))}


def _node_columns(url: str) -> set[str]:
    return {c["name"] for c in inspected(url, lambda inspector: inspector.get_columns("nodes"))}


# What each later revision adds to ``nodes``: (revision, the one before, what to look at, what must appear).
NODE_CHANGES = [
    # the /metrics latency query reads nodes by ``finished_at``
    pytest.param("0003", "0002", _node_indexes, "ix_nodes_finished_at", id="0003-finished_at-index"),
    # the controller's graph cache reads the rows changed since its copy
    pytest.param("0004", "0003", _node_columns, "rev", id="0004-rev-column"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("revision", "before", "look", "added"), NODE_CHANGES)
def test_a_revision_adds_its_part_and_its_downgrade_removes_only_that(
    backend: str,
    revision: str,
    before: str,
    look: Callable[[str], set[str]],
    added: str,
    empty_database_url: Callable[[str], str],
) -> None:
    url = empty_database_url(backend)
    migrate.upgrade(url, before)
    earlier = look(url)
    assert added not in earlier
    migrate.upgrade(url, revision)
    assert migrate.current_revision(url) == revision
    assert look(url) == earlier | {added}
    migrate.downgrade(url, before)
    assert migrate.current_revision(url) == before
    assert look(url) == earlier
    migrate.upgrade(url)
    assert added in look(url)


@pytest.mark.postgres
def test_0004_stamps_every_node_insert_and_update_from_one_sequence(
    empty_database_url: Callable[[str], str],
) -> None:
    """The graph cache's premise (``reads.GraphCache``): any write to a node row gives it a new, higher stamp."""
    url = empty_database_url("postgresql")
    migrate.upgrade(url)
    engine = make_engine(url)
    factory = session_factory(engine)
    try:
        roots = []
        for _ in range(2):
            with session_scope(factory) as session:
                job, _created = repository.create_job(
                    session, strategy="ecoalign", request={"messages": []}, policy={}, budget_total=100,
                    root_text="hi",
                )
                roots.append(node_id(job.id, NodeKind.ROOT, ()))
        with engine.begin() as conn:
            first = dict(conn.execute(text("SELECT id, rev FROM nodes")).all())
            assert first[roots[1]] > first[roots[0]] > 0
            conn.execute(text("UPDATE nodes SET status = 'running' WHERE id = :a"), {"a": roots[0]})
            conn.execute(text("UPDATE nodes SET rev = 0 WHERE id = :b"), {"b": roots[1]})  # no stamp is kept
            second = dict(conn.execute(text("SELECT id, rev FROM nodes")).all())
        assert second[roots[0]] > max(first.values())
        assert second[roots[1]] > second[roots[0]]
    finally:
        engine.dispose()
    migrate.downgrade(url, "0003")
    assert "rev" not in _node_columns(url)


# -- where the scripts are found (a checkout, a wheel install) ----------------------------------------------------
def _copy_migrations(target: Path, *, marker: bool = True) -> Path:
    source = Path(__file__).resolve().parents[2] / "migrations"  # the checkout's
    folder = target / migrate.MIGRATIONS_PACKAGE
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("__pycache__"))
    if not marker:
        (folder / "__init__.py").write_text('"""Another project\'s migrations."""\n')
    return folder


@pytest.fixture
def no_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """As in a wheel install without the repository: nothing beside the package, no override, and the
    ``migrations`` package resolved afresh from ``sys.path``."""
    monkeypatch.delenv(migrate.MIGRATIONS_ENV, raising=False)
    monkeypatch.setattr(migrate, "__file__", str(tmp_path / "site" / "ecoalign" / "store" / "migrate.py"))
    monkeypatch.delitem(sys.modules, migrate.MIGRATIONS_PACKAGE, raising=False)
    path = [p for p in sys.path if not (Path(p or ".").resolve() / "migrations" / "env.py").is_file()]
    monkeypatch.setattr(sys, "path", path)
    # an editable install (setuptools' finder on sys.meta_path) maps ``migrations`` to the checkout too
    finders = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
    monkeypatch.setattr(sys, "meta_path", finders)
    return tmp_path


def test_the_repository_folder_is_used_in_a_checkout() -> None:
    found = migrate.migrations_dir()
    assert found == Path(__file__).resolve().parents[2] / "migrations"
    assert migrate.is_ecoalign_migrations(found)


def test_without_a_checkout_the_installed_package_is_found(no_checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    installed = _copy_migrations(no_checkout / "installed")
    with pytest.raises(FileNotFoundError, match="ECOALIGN_MIGRATIONS_DIR"):
        migrate.migrations_dir()
    monkeypatch.syspath_prepend(str(installed.parent))
    assert migrate.migrations_dir() == installed
    assert migrate.head_revision() == "0005"


def test_another_projects_migrations_package_is_never_used(no_checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    foreign = _copy_migrations(no_checkout / "foreign", marker=False)
    monkeypatch.syspath_prepend(str(foreign.parent))
    assert migrate.packaged_migrations_dir() == foreign
    assert not migrate.is_ecoalign_migrations(foreign)
    with pytest.raises(FileNotFoundError):
        migrate.migrations_dir()


def test_the_override_wins_and_must_hold_env_py(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = _copy_migrations(tmp_path)
    monkeypatch.setenv(migrate.MIGRATIONS_ENV, str(copy))
    assert migrate.migrations_dir() == copy
    monkeypatch.setenv(migrate.MIGRATIONS_ENV, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="ECOALIGN_MIGRATIONS_DIR"):
        migrate.migrations_dir()
