"""Shared pytest fixtures: databases.

Postgres tests use the real server at ``ECOALIGN_TEST_PG_URL`` (default: the local ``postgres`` database, used only
to create and drop a throw-away ``ecoalign_test_<random>`` database, migrated once per session with Alembic).
Two isolations: a test that uses ONE connection runs inside a transaction rolled back at teardown, its sessions
on savepoints (``db_in_transaction``: the pattern pypi/warehouse uses; nothing to clean, nothing left behind);
a test whose rows several connections, threads or processes must see (concurrency, workers) gets an engine with
every table truncated first (``pg_clean_engine``, ``db``). SQLite tests get a fresh copy of a migrated template.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from ecoalign.store import migrate
from ecoalign.store.db import make_engine, session_factory

PG_BASE_URL = os.environ.get("ECOALIGN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _pg_admin(base_url: str | None = None) -> Engine:
    return make_engine(base_url or PG_BASE_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def _pg_reachable(base_url: str | None = None) -> str | None:
    """None if the Postgres server answers, else why not."""
    try:
        engine = _pg_admin(base_url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure means "no server": the Postgres tests skip
        return f"PostgreSQL not reachable at {base_url or PG_BASE_URL}: {exc}"
    return None


@contextmanager
def temporary_pg_database(prefix: str = "ecoalign_test", base_url: str | None = None) -> Iterator[str]:
    """Create an empty database on the test server (or the one of ``base_url``), yield its URL, drop it (forcibly)
    afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin(base_url)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(base_url or PG_BASE_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A migrated Postgres database for the whole session."""
    reason = _pg_reachable()
    if reason:
        pytest.skip(reason)
    with temporary_pg_database() as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


def truncate_all(engine: Engine) -> None:
    """Empty every table of the store (all tables but ``alembic_version``)."""
    with engine.begin() as conn:
        tables = (
            conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")
            )
            .scalars()
            .all()
        )
        if tables:
            names = ", ".join('"' + t + '"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def pg_clean_engine(pg_engine: Engine) -> Engine:
    """The session's Postgres engine with every table emptied."""
    truncate_all(pg_engine)
    return pg_engine


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once; tests get copies of it."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_engine(sqlite_template: Path, tmp_path: Path) -> Iterator[Engine]:
    """A fresh, migrated SQLite file database."""
    path = tmp_path / "store.db"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"])
def db_engine(request: pytest.FixtureRequest) -> Engine:
    """An empty migrated database, once on Postgres and once on SQLite."""
    if request.param == "postgresql":
        return request.getfixturevalue("pg_clean_engine")
    return request.getfixturevalue("sqlite_engine")


@pytest.fixture
def db(db_engine: Engine) -> sessionmaker[Session]:
    """A session factory on ``db_engine`` (each test opens and commits its own transactions)."""
    return session_factory(db_engine)


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"])
def db_in_transaction(request: pytest.FixtureRequest) -> Iterator[sessionmaker[Session]]:
    """A session factory on ONE connection inside an outer transaction that is rolled back at teardown; each
    session's commit only releases its savepoint (``join_transaction_mode="create_savepoint"``), so the test's
    sessions see each other's writes and nothing reaches the database. Use it where one connection suffices
    (sessions one after the other, no threads or processes); otherwise ``db``."""
    engine: Engine = request.getfixturevalue("pg_engine" if request.param == "postgresql" else "sqlite_engine")
    connection = engine.connect()
    outer = connection.begin()
    factory = sessionmaker(
        bind=connection, expire_on_commit=False, autoflush=False, join_transaction_mode="create_savepoint"
    )
    try:
        yield factory
    finally:
        outer.rollback()
        connection.close()


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Factory: ``make("postgresql" | "sqlite")`` → the URL of a new, empty (unmigrated) database."""
    with ExitStack() as stack:

        def make(backend: str) -> str:
            if backend == "sqlite":
                return f"sqlite:///{tmp_path / f'empty-{uuid.uuid4().hex[:8]}.db'}"
            reason = _pg_reachable()
            if reason:
                pytest.skip(reason)
            return stack.enter_context(temporary_pg_database("ecoalign_mig"))

        yield make
