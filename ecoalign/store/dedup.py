"""Every statement of "duplicates decided once": claim a content key, record its decision, find it again exactly
or by a near image hash. Each function runs in the caller's transaction; the protocol is in
``ecoalign.moderation.dedup`` and the table's design in ``ecoalign.store.dedup_models``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, select, tuple_, update
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


def find_near(session: Session, scope: str, near_key: str, first_phash: str) -> list[Entry]:
    """Decided entries with the same ``near_key`` whose first image hash shares a band with ``first_phash``:
    candidates, whose real distance the caller checks."""
    pairs = bands_of(first_phash)
    matching = (
        select(BANDS.c.entry_id)
        .where(BANDS.c.scope == scope, BANDS.c.near_key == near_key, tuple_(BANDS.c.band, BANDS.c.value).in_(pairs))
        .distinct()
    )
    rows = session.execute(
        select(*_COLUMNS).where(ENTRIES.c.id.in_(matching), ENTRIES.c.status == "decided")
    ).all()
    return [Entry(*row) for row in rows]


def claim(
    session: Session,
    *,
    scope: str,
    exact_key: str,
    token: str,
    expires_at: datetime,
    tenant_id: str | None,
    policy_id: str | None,
    policy_version: int | None,
    near_key: str | None,
    phashes: list[str] | None,
) -> bool:
    """Insert the ``pending`` claim of ``exact_key``; False if the key already has a row (the unique constraint:
    on Postgres a racing insert waits for the other's commit and then does nothing)."""
    row = {
        "scope": scope, "exact_key": exact_key, "status": "pending", "claim_token": token,
        "claim_expires_at": expires_at, "tenant_id": tenant_id, "policy_id": policy_id,
        "policy_version": policy_version, "near_key": near_key, "phashes": phashes, "created_at": utcnow(),
    }
    inserted = session.execute(insert_ignoring_conflicts(session, ENTRIES, ENTRIES.c.id), [row]).first()
    return inserted is not None


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


def record(
    session: Session, scope: str, exact_key: str, token: str, *, trace_id: str, result: dict[str, Any]
) -> bool:
    """The claim's decision: the entry becomes ``decided`` (only while ``token`` still holds it), and its first
    image hash is indexed for near-duplicate lookups. False if the claim was lost (taken over)."""
    entry = session.execute(
        update(ENTRIES)
        .where(
            ENTRIES.c.scope == scope, ENTRIES.c.exact_key == exact_key, ENTRIES.c.claim_token == token,
            ENTRIES.c.status == "pending",
        )
        .values(status="decided", trace_id=trace_id, result=result, claim_token=None, claim_expires_at=None,
                decided_at=utcnow())
        .returning(ENTRIES.c.id, ENTRIES.c.near_key, ENTRIES.c.phashes)
    ).first()
    if entry is None:
        return False
    if entry.near_key and entry.phashes:
        session.execute(
            BANDS.insert(),
            [
                {"entry_id": entry.id, "scope": scope, "near_key": entry.near_key, "band": band, "value": value}
                for band, value in bands_of(entry.phashes[0])
            ],
        )
    return True


def release(session: Session, scope: str, exact_key: str, token: str) -> None:
    """Give a claim up without a decision to keep (so the next copy decides anew)."""
    session.execute(
        delete(ENTRIES).where(
            ENTRIES.c.scope == scope, ENTRIES.c.exact_key == exact_key, ENTRIES.c.claim_token == token,
            ENTRIES.c.status == "pending",
        )
    )
