"""Engines, sessions and transactions for SQLite (embedded default) and PostgreSQL (psycopg 3).

SQLite is configured so that it behaves like a small transactional server: WAL (readers never block the
writer), foreign keys on, a busy timeout instead of immediate "database is locked", and ``BEGIN IMMEDIATE`` so a
transaction takes the write lock up front. That last point matters: a deferred transaction that reads and then
writes can fail with SQLITE_BUSY without waiting when another writer committed in between, and it also makes
every transaction serialisable, which is what lets the ledger and the repository skip ``FOR UPDATE`` there.
It also lets SAVEPOINTs work (pysqlite's own transaction handling breaks them).
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

T = TypeVar("T")
log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000


def is_sqlite(url_or_engine: str | Engine) -> bool:
    url = url_or_engine.url if isinstance(url_or_engine, Engine) else make_url(url_or_engine)
    return url.get_backend_name() == "sqlite"


def make_engine(
    url: str,
    *,
    sqlite_begin: str = "BEGIN IMMEDIATE",
    pool_size: int = 10,
    max_overflow: int = 20,
    echo: bool = False,
    **kwargs: Any,
) -> Engine:
    """Create an engine with the settings this store relies on (see the module docstring).

    ``sqlite_begin`` is the statement that opens a SQLite transaction; ``"BEGIN"`` (deferred) lets read-only
    sessions run alongside a writer, at the price of possible SQLITE_BUSY on a later write.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        memory = parsed.database in (None, "", ":memory:")
        connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        connect_args.update(kwargs.pop("connect_args", {}))
        if memory:  # one shared connection, or every checkout would see a different empty database
            kwargs.setdefault("poolclass", StaticPool)
        engine = create_engine(url, connect_args=connect_args, echo=echo, **kwargs)
        _configure_sqlite(engine, sqlite_begin, wal=not memory)
        return engine
    if parsed.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        if kwargs.get("poolclass") is None:  # a queue pool; NullPool/StaticPool take no size
            kwargs.setdefault("pool_size", pool_size)
            kwargs.setdefault("max_overflow", max_overflow)
            kwargs.setdefault("pool_recycle", 1800)
        connect_args = {"application_name": "ecoalign", "connect_timeout": 10}
        connect_args.update(kwargs.pop("connect_args", {}))
        return create_engine(url, connect_args=connect_args, echo=echo, **kwargs)
    raise ValueError(f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}")


def _configure_sqlite(engine: Engine, begin: str, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite: it would otherwise emit BEGIN lazily (breaking
        # SAVEPOINT) and COMMIT before DDL. SQLAlchemy's "begin" event below emits our own BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            if wal:
                _enable_wal(cursor, SQLITE_BUSY_TIMEOUT_MS / 1000)
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)


def _enable_wal(cursor: Any, timeout_s: float) -> None:
    """``PRAGMA journal_mode=WAL``, waiting up to ``timeout_s`` for another connection's write lock.

    Why a loop: switching a file that is not yet in WAL mode (a new database) reads its header, then upgrades that
    read to a write, and SQLite never runs the busy handler for such an upgrade (it could deadlock), so the switch
    fails at once with "database is locked" while another process holds the write lock, as when an API and its
    workers start together on a new file. Once the file is in WAL mode the pragma writes nothing and cannot fail.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def ping(engine: Engine) -> None:
    """One round trip to the database (``SELECT 1``); raises whatever the driver raises if it is unreachable."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (results are handed to other layers afterwards)."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit if the block succeeds, roll back if it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# -- state that lives as long as a transaction ------------------------------------------------------------------
AFTER_COMMIT = "ecoalign.after_commit"
TRANSACTION_INFO = "ecoalign.transaction"


def after_commit(session: Session, hook: Callable[[], None]) -> None:
    """Run ``hook()`` once the session's outermost transaction has committed; never if it rolls back or is closed.

    For state kept outside the database that must only ever show committed data (``reads.GraphCache``). A hook
    must not raise (the commit is done): an exception is logged and dropped.
    """
    session.info.setdefault(AFTER_COMMIT, []).append(hook)


def transaction_info(session: Session) -> dict[str, Any]:
    """A dict for the session's current outermost transaction: emptied when that transaction ends, however it ends."""
    return session.info.setdefault(TRANSACTION_INFO, {})


@event.listens_for(Session, "after_commit")
def _run_after_commit_hooks(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint: the outermost transaction may still roll back
        return
    for hook in session.info.pop(AFTER_COMMIT, ()):
        try:
            hook()
        except Exception:
            log.exception("after-commit hook %r failed", hook)


@event.listens_for(Session, "after_transaction_end")
def _forget_transaction_state(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the outermost ended (committed, rolled back or closed): start afresh
        session.info.pop(AFTER_COMMIT, None)
        session.info.pop(TRANSACTION_INFO, None)


# SQLSTATEs worth retrying on Postgres: serialization failure, deadlock detected.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
# The server went away or is not there yet: class 08 (connection exception), 57P01-57P03 (admin shutdown, crash
# shutdown, cannot connect now: starting up or shutting down).
_CONNECTION_SQLSTATES = frozenset({"08000", "08001", "08003", "08004", "08006", "57P01", "57P02", "57P03"})
_CONNECTION_MESSAGES = (
    "connection refused", "could not connect", "server closed the connection", "terminating connection",
    "connection is closed", "the database system is", "consuming input failed", "connection timeout expired",
)
# How long a transaction keeps being retried while the database is unreachable (a restart, a failover).
RECONNECT_S = 60.0


def is_connection_loss(exc: BaseException) -> bool:
    """The database server went away (restart, failover, dropped connection) or is not accepting connections yet.

    The pool has discarded the dead connection (and its elders), so running the transaction again connects afresh.
    """
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in _CONNECTION_SQLSTATES:
        return True
    message = str(orig).lower()
    return any(needle in message for needle in _CONNECTION_MESSAGES)


def is_retryable(exc: BaseException) -> bool:
    """A transient fault: Postgres deadlock/serialization failure, SQLite busy/locked after the timeout, or the
    connection lost (``is_connection_loss``: what lets workers run without a ping before every transaction)."""
    if not isinstance(exc, DBAPIError):
        return False
    if is_connection_loss(exc):
        return True
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in _RETRYABLE_SQLSTATES:
        return True
    message = str(orig).lower()
    return "database is locked" in message or "database is busy" in message


def run_in_transaction(
    factory: sessionmaker[Session],
    fn: Callable[[Session], T],
    *,
    attempts: int = 5,
    backoff_s: float = 0.05,
    reconnect_s: float | None = None,
) -> T:
    """Run ``fn(session)`` in its own transaction, retrying the whole transaction on a transient fault.

    A conflict (deadlock, serialization failure, SQLite busy) is retried ``attempts`` times. A lost connection
    (the server restarted: ``is_connection_loss``) is retried on a new connection for up to ``reconnect_s``
    (default ``RECONNECT_S``), backing off to one try a second, so a PostgreSQL restart stalls callers instead of
    failing them. A transaction whose COMMIT was cut off may or may not have committed: running it again is safe
    because ``fn`` must be safe to run again from scratch (every store operation is: they are idempotent).
    """
    deadline: float | None = None
    conflicts = lost = 0
    while True:
        try:
            with session_scope(factory) as session:
                return fn(session)
        except DBAPIError as exc:
            if is_connection_loss(exc):
                now = time.monotonic()
                deadline = deadline if deadline is not None else now + (RECONNECT_S if reconnect_s is None
                                                                        else reconnect_s)
                if now >= deadline:
                    raise
                log.warning("database connection lost (%s); retrying the transaction", type(exc.orig).__name__)
                time.sleep(min(1.0, backoff_s * 2 ** min(lost, 5)))
                lost += 1
                continue
            conflicts += 1
            if conflicts >= attempts or not is_retryable(exc):
                raise
            time.sleep(backoff_s * 2 ** (conflicts - 1))


def dialect_insert(session: Session, table: Any) -> Any:
    """``INSERT`` with ``on_conflict_do_nothing()`` for the session's dialect (Postgres or SQLite).

    Both dialects spell it ``INSERT ... ON CONFLICT DO NOTHING`` and both support ``RETURNING`` after it
    (SQLite since 3.35), so callers learn which rows were really new.
    """
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return pg_insert(table)
    if name == "sqlite":
        return sqlite_insert(table)
    raise NotImplementedError(f"no ON CONFLICT insert for dialect {name}")


@functools.lru_cache(maxsize=64)
def _insert_ignoring_conflicts(dialect: str, table: Any, returning: tuple[Any, ...]) -> Any:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(table).on_conflict_do_nothing()
    return statement.returning(*returning) if returning else statement


def insert_ignoring_conflicts(session: Session, table: Any, *returning: Any) -> Any:
    """``dialect_insert(session, table).on_conflict_do_nothing().returning(*returning)``, built once per dialect.

    For the hot path's executemany inserts (rows passed as parameters): building a statement costs several
    times what executing a built one does.
    """
    name = session.get_bind().dialect.name
    if name not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"no ON CONFLICT insert for dialect {name}")
    return _insert_ignoring_conflicts(name, table, returning)
