"""The transaction runner's retries (real Postgres)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from ecoalign.store.db import is_retryable, make_engine, run_in_transaction, session_factory

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
        assert len(attempts) == 2 and pid != dead
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
        assert calls == [1] and not is_retryable(caught.value)
    finally:
        engine.dispose()
