"""The one cursor pagination of every list endpoint: newest first, keyset on ``(created_at, id)``.

The cursor is the id of the last item of the previous page (opaque to clients: ``next_cursor`` on ``/v1/jobs``,
``last_id`` on the OpenAI-shaped lists, where the OpenAI SDKs pass it back as ``after``). It is resolved to its
position within the caller's scope (its tenant), so a cursor never reveals or reaches another tenant's rows, and
the page continues from that position even if the anchor's own filters (a job's status) changed since.
Keyset, not OFFSET: a page costs the same at any depth, and rows inserted meanwhile neither repeat nor vanish.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Subquery, and_, or_, select
from sqlalchemy.orm import Session

T = TypeVar("T")


class InvalidCursor(ValueError):
    """``after`` names no item in the caller's scope (unknown, another tenant's, or deleted)."""


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, newest first, and whether more follow."""

    items: list[T]
    has_more: bool

    @property
    def first_id(self) -> str | None:
        return self.items[0].id if self.items else None  # type: ignore[attr-defined]

    @property
    def last_id(self) -> str | None:
        return self.items[-1].id if self.items else None  # type: ignore[attr-defined]

    @property
    def next_cursor(self) -> str | None:
        """What to pass as ``after`` for the next page; None on the last page."""
        return self.last_id if self.has_more else None

    def openai_list(self, view: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
        """The OpenAI list object: ``{object: "list", data, first_id, last_id, has_more}``."""
        return {
            "object": "list",
            "data": [view(item) for item in self.items],
            "first_id": self.first_id,
            "last_id": self.last_id,
            "has_more": self.has_more,
        }


def keyset_page(
    session: Session,
    entity: Any,
    *,
    scope: Sequence[ColumnElement[bool]],
    filters: Sequence[ColumnElement[bool]] = (),
    limit: int,
    after: str | None = None,
) -> Page[Any]:
    """Rows of ``entity`` (a model with ``id`` and ``created_at``, or a subquery with those columns, whose rows are
    then returned as ``Row`` objects) within ``scope`` (e.g. its tenant) and ``filters``, newest first, after the
    item ``after``: at most ``limit`` of them.

    Raises ``InvalidCursor`` if ``after`` is not an item within ``scope``.
    """
    columns = entity.c if isinstance(entity, Subquery) else entity
    query = select(entity).where(*scope, *filters)
    if after is not None:
        anchor = session.execute(
            select(columns.created_at).where(columns.id == after, *scope)
        ).scalar_one_or_none()
        if anchor is None:
            raise InvalidCursor(f"unknown cursor {after!r}")
        query = query.where(
            or_(columns.created_at < anchor, and_(columns.created_at == anchor, columns.id < after))
        )
    query = query.order_by(columns.created_at.desc(), columns.id.desc()).limit(limit + 1)
    result = session.execute(query) if isinstance(entity, Subquery) else session.scalars(query)
    rows = list(result)
    return Page(rows[:limit], len(rows) > limit)
