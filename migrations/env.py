"""Alembic environment for the ecoalign store.

Where the database comes from, first match wins:
1. ``config.attributes["connection"]``: an open SQLAlchemy connection (``ecoalign.store.migrate`` passes one,
   inside a transaction it commits, so a whole upgrade is atomic on both back ends);
2. ``config.attributes["url"]``;
3. the ``sqlalchemy.url`` main option;
4. the ``ECOALIGN_DB_URL`` environment variable.

SQLite gets ``render_as_batch=True`` (it cannot ALTER most things; batch mode rebuilds the table). Postgres
takes a transaction-scoped advisory lock so two processes upgrading at once run one after the other.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from ecoalign.store import schema
from ecoalign.store.base import UTCDateTime
from ecoalign.store.db import make_engine

config = context.config

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = schema.metadata  # every table (both model modules)

# Any 64-bit constant: the key of the advisory lock that serialises concurrent upgrades on Postgres.
_PG_MIGRATION_LOCK = 0x65636F616C69676E  # "ecoalign"


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url") or os.environ.get("ECOALIGN_DB_URL")
    if not url:
        raise RuntimeError("no database URL: pass one to ecoalign.store.migrate or set ECOALIGN_DB_URL")
    return str(url)


def _render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """Render the models' ``UTCDateTime`` as a plain ``sa.DateTime(timezone=True)`` in new migrations, so
    migration scripts never import application code (they must keep working when the models change)."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    dialect = connection.dialect.name if connection is not None else url.split(":", 1)[0].split("+", 1)[0]
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        render_as_batch=dialect == "sqlite",
        # SQLite DDL is transactional once pysqlite stops managing transactions (ecoalign.store.db does that).
        transactional_ddl=True if dialect == "sqlite" and connection is not None else None,
        compare_type=True,
        render_item=_render_item,
        literal_binds=connection is None,
        dialect_opts={"paramstyle": "named"} if connection is None else {},
    )


def run_migrations_offline() -> None:
    _configure(url=_url())
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
