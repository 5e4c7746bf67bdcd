"""Create and upgrade the schema with Alembic, programmatically.

The schema exists only through the migrations in ``migrations/`` (never ``metadata.create_all``), so a
database created by the CLI, by a test and by a production deploy is the same database.
Each call runs the whole upgrade in one transaction on one connection: both SQLite and Postgres have
transactional DDL, so a failed upgrade leaves the previous schema intact. Calling ``upgrade`` on a database
that is already at head does nothing, which is what lets the local CLI call it on every start.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from ecoalign.store.db import make_engine

MIGRATIONS_ENV = "ECOALIGN_MIGRATIONS_DIR"

# Alembic's ``context`` and ``op`` are process-global proxies: two commands running at once in one process
# would trample each other. Across processes the database serialises them (env.py takes a lock).
_ALEMBIC_LOCK = threading.Lock()


def migrations_dir() -> Path:
    """The Alembic script directory: ``$ECOALIGN_MIGRATIONS_DIR`` or ``migrations/`` at the repository root."""
    override = os.environ.get(MIGRATIONS_ENV)
    path = Path(override) if override else Path(__file__).resolve().parents[2] / "migrations"
    if not (path / "env.py").is_file():
        raise FileNotFoundError(f"Alembic migrations not found at {path} (set {MIGRATIONS_ENV})")
    return path


def alembic_config(url: str | None = None) -> Config:
    """An Alembic ``Config`` for this project without reading ``alembic.ini`` (which would reset logging)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    cfg.attributes["configure_logger"] = False
    if url is not None:
        cfg.attributes["url"] = url
    return cfg


def _run(url: str, action: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        # One transaction for the whole run: it commits at the end of the block, or rolls back on error.
        with _ALEMBIC_LOCK, engine.begin() as connection:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = connection
            if action == "upgrade":
                command.upgrade(cfg, revision)
            else:
                command.downgrade(cfg, revision)
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision`` (idempotent)."""
    _run(url, "upgrade", revision)


def downgrade(url: str, revision: str) -> None:
    """Take the database at ``url`` down to ``revision`` (``"base"`` drops every table of the store)."""
    _run(url, "downgrade", revision)


def head_revision() -> str | None:
    """The newest revision in the migration scripts."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(url_or_engine: str | Engine) -> str | None:
    """The revision the database is at, ``None`` for an empty database."""
    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        if isinstance(url_or_engine, str):
            engine.dispose()


def is_current(url: str) -> bool:
    """Whether the database is at the newest revision (a cheap check before deciding to upgrade)."""
    return current_revision(url) == head_revision()


def ensure_schema(url: str) -> None:
    """Make the database at ``url`` ready to use: for SQLite create the file's folder, then upgrade to head if it
    is behind. Cheap when it is already current (one read of ``alembic_version``), so callers run it on every
    start. (An in-memory SQLite URL gets a private database per engine: migrate that engine's connection instead.)
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    if not is_current(url):
        upgrade(url)
