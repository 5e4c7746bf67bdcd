"""The transaction runner's retries and the after-commit hooks (real Postgres)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from ecoalign.store.db import (
    after_commit,
    is_retryable,
    make_engine,
    run_in_transaction,
    session_factory,
    session_scope,
    transaction_info,
)

pytestmark = pytest.mark.postgres


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def test_a_transaction_on_a_dropped_connection_is_retried_on_a_new_one(pg_url: str, pg_engine: Engine) -> None:
    """Workers run without a pre-ping: a pooled connection the server dropped costs one retry, not a failure."""
    engine = make_engine(pg_url, pool_size=1, max_overflow=0, pool_pre_ping=False)
    try:
        dead = _backend_pid(engine)  # the pool keeps this connection
        with pg_engine.connect() as admin:
            assert admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": dead}).scalar_one()
        attempts: list[int] = []

        def read_pid(session: object) -> int:
            attempts.append(1)
            return session.execute(text("SELECT pg_backend_pid()")).scalar_one()  # type: ignore[attr-defined]

        pid = run_in_transaction(session_factory(engine), read_pid, backoff_s=0.0)
        assert len(attempts) == 2
        assert pid != dead
    finally:
        engine.dispose()


def test_a_statement_error_is_not_retried(pg_url: str) -> None:
    engine = make_engine(pg_url, pool_size=1, max_overflow=0, pool_pre_ping=False)
    calls: list[int] = []

    def broken(session: object) -> None:
        calls.append(1)
        session.execute(text("SELECT * FROM no_such_table"))  # type: ignore[attr-defined]

    try:
        with pytest.raises(DBAPIError) as caught:
            run_in_transaction(session_factory(engine), broken, backoff_s=0.0)
        assert calls == [1]
        assert not is_retryable(caught.value)
    finally:
        engine.dispose()


# -- after_commit / transaction_info ---------------------------------------------------------------------------------
class Boom(Exception):
    pass


def test_after_commit_hooks_run_once_after_the_outermost_commit_only(pg_engine: Engine) -> None:
    factory = session_factory(pg_engine)
    ran: list[str] = []
    with session_scope(factory) as s:
        after_commit(s, lambda: ran.append("outer"))
        savepoint = s.begin_nested()
        after_commit(s, lambda: ran.append("in savepoint"))
        savepoint.commit()
        assert ran == []  # a savepoint's commit is not the transaction's
        transaction_info(s)["k"] = 1
    assert ran == ["outer", "in savepoint"]
    assert "k" not in transaction_info(s)

    def roll_back() -> None:
        with session_scope(factory) as s:
            after_commit(s, lambda: ran.append("rolled back"))
            raise Boom

    with pytest.raises(Boom):
        roll_back()
    assert ran == ["outer", "in savepoint"]


def test_a_reused_session_forgets_what_an_abandoned_transaction_registered(pg_engine: Engine) -> None:
    factory = session_factory(pg_engine)
    ran: list[str] = []
    session = factory()
    try:
        session.execute(text("SELECT 1"))
        after_commit(session, lambda: ran.append("abandoned"))
        transaction_info(session)["copy"] = "stale"
        session.close()  # no commit, no rollback call
        session.execute(text("SELECT 1"))
        assert transaction_info(session) == {}
        after_commit(session, lambda: ran.append("second"))
        session.commit()
    finally:
        session.close()
    assert ran == ["second"]


def test_a_failing_hook_is_logged_and_the_others_still_run(pg_engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    ran: list[str] = []

    def failing() -> None:
        raise RuntimeError("hook bug")

    with session_scope(session_factory(pg_engine)) as s:
        after_commit(s, failing)
        after_commit(s, lambda: ran.append("next"))
    assert ran == ["next"]
    assert "hook bug" in caplog.text
