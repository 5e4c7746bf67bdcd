"""Every statement of "duplicates decided once": claim a content key, record its decision, find it again exactly
or by a near image hash. Each function runs in the caller's transaction; the protocol is in
``ecoalign.moderation.dedup`` and the table's design in ``ecoalign.store.dedup_models``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select, tuple_, update
from sqlalchemy.orm import Session

from ecoalign.store.base import utcnow
from ecoalign.store.db import insert_ignoring_conflicts
from ecoalign.store.dedup_models import DedupBand, DedupEntry

ENTRIES = cast(Table, DedupEntry.__table__)
BANDS = cast(Table, DedupBand.__table__)
BAND_COUNT = 8  # bands of 8 bits of a 64-bit hash: any two hashes within distance 7 share one


@dataclass(frozen=True)
class Entry:
    """What a lookup finds: a decided entry (its result and trace) or another worker's claim."""

    exact_key: str
    status: str
    claim_expires_at: datetime | None
    trace_id: str | None
    result: dict[str, Any] | None
    phashes: list[str] | None

    @property
    def decided(self) -> bool:
        return self.status == "decided"


_COLUMNS = (
    ENTRIES.c.exact_key, ENTRIES.c.status, ENTRIES.c.claim_expires_at, ENTRIES.c.trace_id, ENTRIES.c.result,
    ENTRIES.c.phashes,
)


def bands_of(phash_hex: str) -> list[tuple[int, int]]:
    """The (band, value) pairs of a 64-bit hash in hex."""
    value = int(phash_hex, 16)
    return [(band, (value >> (8 * band)) & 0xFF) for band in range(BAND_COUNT)]


def find_exact(session: Session, scope: str, exact_keys: list[str]) -> dict[str, Entry]:
    """The entries (decided or claimed) of ``exact_keys`` in ``scope``."""
    if not exact_keys:
        return {}
    rows = session.execute(
        select(*_COLUMNS).where(ENTRIES.c.scope == scope, ENTRIES.c.exact_key.in_(exact_keys))
    ).all()
    return {row.exact_key: Entry(*row) for row in rows}


def find_near(session: Session, scope: str, queries: list[tuple[str, str]]) -> dict[str, list[Entry]]:
    """For each ``(near_key, first image hash)``: the decided entries with that near key whose first image hash
    shares a band with it (candidates, whose real distance the caller checks), by near key. Two statements for
    any number of queries."""
    if not queries:
        return {}
    wanted: dict[str, set[tuple[int, int]]] = {}
    for near, phash in queries:
        wanted.setdefault(near, set()).update(bands_of(phash))
    pairs = sorted({pair for bands in wanted.values() for pair in bands})
    hits = session.execute(
        select(BANDS.c.entry_id, BANDS.c.near_key, BANDS.c.band, BANDS.c.value).where(
            BANDS.c.scope == scope, BANDS.c.near_key.in_(sorted(wanted)),
            tuple_(BANDS.c.band, BANDS.c.value).in_(pairs),
        )
    ).all()
    ids = {row.entry_id for row in hits if (row.band, row.value) in wanted[row.near_key]}
    if not ids:
        return {}
    rows = session.execute(
        select(ENTRIES.c.near_key, *_COLUMNS).where(ENTRIES.c.id.in_(sorted(ids)), ENTRIES.c.status == "decided")
    ).all()
    out: dict[str, list[Entry]] = {}
    for row in rows:
        out.setdefault(row[0], []).append(Entry(*row[1:]))
    return out


def claim(session: Session, rows: list[dict[str, Any]], *, expires_at: datetime) -> set[str]:
    """Insert the ``pending`` claims of ``rows`` (each: ``scope``, ``exact_key``, ``claim_token``, ``tenant_id``,
    ``policy_id``, ``policy_version``, ``near_key``, ``phashes``) in one statement; the exact keys this call now
    holds. A key that already has a row is skipped (the unique constraint: on Postgres a racing insert waits for
    the other's commit and then does nothing)."""
    if not rows:
        return set()
    now = utcnow()
    values = [{**row, "status": "pending", "claim_expires_at": expires_at, "created_at": now}
              for row in sorted(rows, key=lambda r: str(r["exact_key"]))]  # one lock order: no deadlock
    inserted = session.execute(insert_ignoring_conflicts(session, ENTRIES, ENTRIES.c.exact_key), values).all()
    return {row.exact_key for row in inserted}


def take_over(session: Session, scope: str, exact_key: str, token: str, expires_at: datetime, now: datetime) -> bool:
    """Take a claim whose holder did not decide in time (a conditional UPDATE: one taker wins)."""
    result = session.execute(
        update(ENTRIES)
        .where(
            ENTRIES.c.scope == scope, ENTRIES.c.exact_key == exact_key, ENTRIES.c.status == "pending",
            ENTRIES.c.claim_expires_at < now,
        )
        .values(claim_token=token, claim_expires_at=expires_at)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


_RECORD = (
    update(ENTRIES)
    .where(
        ENTRIES.c.scope == bindparam("b_scope"), ENTRIES.c.exact_key == bindparam("b_key"),
        ENTRIES.c.claim_token == bindparam("b_token"), ENTRIES.c.status == "pending",
    )
    .values(
        status="decided", trace_id=bindparam("b_trace"), result=bindparam("b_result", type_=ENTRIES.c.result.type),
        claim_token=None, claim_expires_at=None, decided_at=bindparam("b_at", type_=ENTRIES.c.decided_at.type),
    )
)


def record(session: Session, scope: str, decided: list[tuple[str, str, str, dict[str, Any]]]) -> None:
    """Claims' decisions, ``(exact_key, token, trace_id, result)`` each: the entries become ``decided`` (only
    where the token still holds the claim; a claim taken over is left to its new holder), and their first image
    hashes are indexed for near-duplicate lookups. Three statements for any number of entries."""
    if not decided:
        return
    now = utcnow()
    session.execute(_RECORD, [
        {"b_scope": scope, "b_key": key, "b_token": token, "b_trace": trace_id, "b_result": result, "b_at": now}
        for key, token, trace_id, result in decided
    ])
    traces = {trace_id for _, _, trace_id, _ in decided}
    entries = session.execute(
        select(ENTRIES.c.id, ENTRIES.c.near_key, ENTRIES.c.phashes, ENTRIES.c.trace_id).where(
            ENTRIES.c.scope == scope, ENTRIES.c.exact_key.in_([d[0] for d in decided]),
            ENTRIES.c.status == "decided", ENTRIES.c.near_key.is_not(None),
        )
    ).all()
    bands = [
        {"entry_id": e.id, "scope": scope, "near_key": e.near_key, "band": band, "value": value}
        for e in entries if e.trace_id in traces and e.phashes
        for band, value in bands_of(e.phashes[0])
    ]
    if bands:
        session.execute(BANDS.insert(), bands)


def release(session: Session, scope: str, exact_key: str, token: str) -> None:
    """Give a claim up without a decision to keep (so the next copy decides anew)."""
    session.execute(
        delete(ENTRIES).where(
            ENTRIES.c.scope == scope, ENTRIES.c.exact_key == exact_key, ENTRIES.c.claim_token == token,
            ENTRIES.c.status == "pending",
        )
    )
