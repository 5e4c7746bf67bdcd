"""A run budget that also holds every judge reservation on the tenant's total and daily budget in the database,
so moderation and jobs draw on one budget and neither can overspend it (``POST /v1/moderations`` and Batch
moderation lines; the CLI has no tenant)."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session, sessionmaker

from ecoalign.moderation.budget import RunBudget
from ecoalign.store import tenants
from ecoalign.store.base import utcnow
from ecoalign.store.db import run_in_transaction
from ecoalign.store.tenants import reserve_tenant_tokens


class TenantRunBudget(RunBudget):
    """A ``RunBudget`` (the request's or batch line's own cap) whose every reservation is also held on the
    tenant's total and daily budget in the database, and settled there with the judge's real usage.

    If a process dies between reserve and settle (during one judge call) that reservation stays held on the
    tenant: the budget errs on the safe side (it can only be under-used, never overspent).
    """

    def __init__(self, total: int | None, sessions: sessionmaker[Session], tenant_id: str | None) -> None:
        super().__init__(total)
        self.sessions = sessions
        self.tenant_id = tenant_id
        self._held: dict[int, tuple[int, date]] = {}
        self.charged = 0

    def reserve(self, tokens: int) -> int | None:
        reservation = super().reserve(tokens)
        if reservation is None or self.tenant_id is None:
            return reservation
        tenant_id, day = self.tenant_id, utcnow().date()
        try:
            ok = run_in_transaction(self.sessions, lambda s: reserve_tenant_tokens(s, tenant_id, day, tokens))
        except Exception:
            super().refund(reservation)
            raise
        if not ok:
            super().refund(reservation)
            return None
        with self._lock:
            self._held[reservation] = (tokens, day)
        return reservation

    def settle(self, reservation: int, used: int) -> None:
        super().settle(reservation, used)
        self._release(reservation, used)

    def refund(self, reservation: int) -> None:
        super().refund(reservation)
        self._release(reservation, 0)

    def _release(self, reservation: int, used: int) -> None:
        with self._lock:
            held = self._held.pop(reservation, None)
        if held is None or self.tenant_id is None:
            return
        tenant_id, (tokens, day) = self.tenant_id, held
        charged = run_in_transaction(
            self.sessions, lambda s: tenants.settle_tenant(s, tenant_id, day, tokens, used)
        )
        with self._lock:
            self.charged += charged
