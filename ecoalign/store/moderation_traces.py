"""The ``moderation_traces`` table's writes: one INSERT of many rows, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from ecoalign.store.batch_models import ModerationTrace

TRACES = cast(Table, ModerationTrace.__table__)


def store_traces(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``moderation_traces`` rows (``ecoalign.moderation.traces.trace_rows``) in one statement."""
    if rows:
        session.execute(TRACES.insert(), list(rows))
