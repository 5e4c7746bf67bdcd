"""Create and upgrade the schema with Alembic, programmatically.

The schema exists only through the migrations in ``migrations/`` (never ``metadata.create_all``; see
``migrations_dir`` for where they are found in a checkout and in a wheel install), so a
database created by the CLI, by a test and by a production deploy is the same database.
Each call runs the whole upgrade in one transaction on one connection: both SQLite and Postgres have
transactional DDL, so a failed upgrade leaves the previous schema intact. Calling ``upgrade`` on a database
that is already at head does nothing, which is what lets the local CLI call it on every start.
"""

from __future__ import annotations

import importlib.util
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
MIGRATIONS_PACKAGE = "migrations"  # the top-level ``migrations/`` folder, shipped in the wheel as a package
MIGRATIONS_MARKER = "ECOALIGN_MIGRATIONS"  # set in migrations/__init__.py

# Alembic's ``context`` and ``op`` are process-global proxies: two commands running at once in one process
# would trample each other. Across processes the database serialises them (env.py takes a lock).
_ALEMBIC_LOCK = threading.Lock()


def migrations_dir() -> Path:
    """The Alembic script directory, first match wins:

    1. ``$ECOALIGN_MIGRATIONS_DIR`` (an error if it has no ``env.py``);
    2. ``migrations/`` next to the ``ecoalign`` package: the repository root of a checkout or an editable
       install (in a wheel install, site-packages, where the wheel put the package of step 3);
    3. the ``migrations`` package installed with the wheel, wherever it is on ``sys.path`` (``importlib``).

    Steps 2 and 3 accept a folder only if it is ecoalign's (``ECOALIGN_MIGRATIONS`` in its ``__init__.py``, read,
    not imported): ``migrations`` is a generic name, and another project's scripts must never run here.
    """
    override = os.environ.get(MIGRATIONS_ENV)
    if override:
        path = Path(override)
        if not (path / "env.py").is_file():
            raise FileNotFoundError(f"Alembic migrations not found at {path} ({MIGRATIONS_ENV})")
        return path
    beside = Path(__file__).resolve().parents[2] / MIGRATIONS_PACKAGE
    for candidate in (beside, packaged_migrations_dir()):
        if candidate is not None and is_ecoalign_migrations(candidate):
            return candidate
    raise FileNotFoundError(
        f"ecoalign's Alembic migrations not found at {beside} nor as an installed {MIGRATIONS_PACKAGE!r} package "
        f"(reinstall ecoalign, or set {MIGRATIONS_ENV})"
    )


def packaged_migrations_dir() -> Path | None:
    """The folder of the importable ``migrations`` package (without importing it), or None."""
    try:
        spec = importlib.util.find_spec(MIGRATIONS_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None or spec.submodule_search_locations is None:
        return None  # missing, a namespace package, or a plain module
    return Path(spec.origin).parent


def is_ecoalign_migrations(path: Path) -> bool:
    """Whether ``path`` holds ecoalign's migrations: ``env.py``, and the marker in ``__init__.py``."""
    init = path / "__init__.py"
    if not (path / "env.py").is_file() or not init.is_file():
        return False
    return any(line.startswith(f"{MIGRATIONS_MARKER} = True") for line in init.read_text().splitlines())


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
