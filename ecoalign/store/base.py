"""What every table of the store shares: the declarative ``Base`` (one ``MetaData`` with stable constraint names),
the portable column types, the id and clock helpers, and the CHECK builder.

Both model modules (``models``: tenants, jobs, graph, ledger; ``batch_models``: moderation traces, files,
batches) import this one and nothing of each other, so the schema has no import cycle. ``schema`` imports both:
it is the whole metadata, what Alembic compares the migrations with.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer, MetaData, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase

# Deterministic constraint names on both dialects: Alembic's batch mode on SQLite needs named constraints to
# drop or alter them, and stable names keep the migrations and the models comparable.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Aware UTC now: every timestamp the store writes comes from here (or from the caller, in UTC)."""
    return datetime.now(UTC)


def new_id() -> str:
    """A random 32-char hex id (uuid4), the primary key of tenants, keys and jobs."""
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always aware UTC in Python.

    Postgres stores ``timestamptz`` and psycopg returns aware values; SQLite has no time zone type and hands
    back naive ones. Normalising both ways means the runtime can compare ``lease_expires_at < utcnow()`` on
    either back end without a ``TypeError`` or a silent local-time shift.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # naive values are taken to be UTC already
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        # SQLite compares timestamps as text: store them naive so every value has the same format.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSON everywhere, JSONB on Postgres (binary, comparable, indexable).
JSONType = JSON().with_variant(JSONB(), "postgresql")
# An auto-increment 64-bit key; SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")



def check_in(column: str, values: tuple[str, ...] | list[str], *, nullable: bool = False) -> str:
    """The SQL text of a CHECK that ``column`` takes one of ``values`` (portable: no native enums)."""
    listed = ", ".join(f"'{v}'" for v in values)
    check = f"{column} IN ({listed})"
    return f"{column} IS NULL OR {check}" if nullable else check


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
    }
