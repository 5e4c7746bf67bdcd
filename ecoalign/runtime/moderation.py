"""Moderation as a service: what ``POST /v1/moderations`` (api/routes/moderations.py) and the Batch API's
moderation lines (workers/batch_tasks.py) share.

* ``ModerationEngine``: the scanner (``ECOALIGN_EVALUATOR``: offline or heuristic) and the optional LLM judge
  (``ECOALIGN_JUDGE_URL`` / ``ECOALIGN_JUDGE_MODEL``), built once per process on first use;
* ``TenantRunBudget``: a run budget whose every judge reservation is also held on the tenant's total and daily
  budget in the database (``ecoalign.store.ledger``: ``reserve_tenant`` / ``settle_tenant``), so moderation and
  jobs draw on one budget and neither can overspend it;
* ``traced`` / ``store_traces``: the ``moderation_traces`` rows of a run's results.
"""

from __future__ import annotations

import os
import threading
from datetime import date
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.batch import trace_rows
from ecoalign.moderation import ModerationJudge, ModerationPolicy, ModerationResult, Moderator, RunBudget
from ecoalign.settings import Settings
from ecoalign.store import tenants
from ecoalign.store.base import utcnow
from ecoalign.store.batch_models import ModerationTrace
from ecoalign.store.db import run_in_transaction

TRACES = cast(Table, ModerationTrace.__table__)


# -- scanner and judge, built once per process --------------------------------------------------------------------
class ModerationEngine:
    """The scanner (``ECOALIGN_EVALUATOR``: offline or heuristic) and the optional LLM judge, built on first use.

    Thread-safe; one per API app and one per worker process. A ``Moderator`` is cheap and is made per request
    (it carries that request's policy and budget).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._scanner: Any = None
        self._judge: ModerationJudge | None = None
        self._judge_built = False
        self._closers: list[Any] = []

    def scanner(self) -> Any:
        with self._lock:
            if self._scanner is None:
                name = self.settings.evaluator
                if name == "heuristic":
                    from ecoalign.evaluators.heuristic import HeuristicScanner

                    self._scanner = HeuristicScanner()
                elif name == "offline":
                    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                    from ecoalign.evaluators.scanner import OfflineScanner

                    self._scanner = OfflineScanner()
                else:
                    raise RuntimeError(f"unknown evaluator {name!r}: expected offline or heuristic")
            return self._scanner

    def judge(self) -> ModerationJudge | None:
        with self._lock:
            if not self._judge_built:
                s = self.settings
                if s.judge_url:
                    from ecoalign.moderation import ChatModerationJudge
                    from ecoalign.runtime.factory import http_provider

                    if not s.judge_model:
                        raise RuntimeError("ECOALIGN_JUDGE_URL needs ECOALIGN_JUDGE_MODEL")
                    provider = http_provider(s, s.judge_url, s.judge_model, s.judge_api_key)
                    self._closers.append(provider.close)
                    self._judge = ChatModerationJudge(provider)
                self._judge_built = True
            return self._judge

    def moderator(self, policy: ModerationPolicy, budget: RunBudget) -> Moderator:
        return Moderator(self.scanner(), self.judge(), policy, budget)

    def close(self) -> None:
        for close in self._closers:
            close()
        self._closers.clear()


# -- tenant budget -------------------------------------------------------------------------------------------------
def reserve_tenant_tokens(session: Session, tenant_id: str, day: date, tokens: int) -> bool:
    """Hold ``tokens`` on the tenant's total and daily counters, or change nothing and return False.

    ``tenants.reserve_tenant`` inside a savepoint: it may have moved the total before the daily check failed.
    """
    savepoint = session.begin_nested()
    if not tenants.reserve_tenant(session, tenant_id, day, tokens):
        savepoint.rollback()
        return False
    savepoint.commit()
    return True


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


# -- traces --------------------------------------------------------------------------------------------------------
def store_traces(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert ``moderation_traces`` rows (``traced``) in one statement."""
    if rows:
        session.execute(TRACES.insert(), rows)


def traced(run_id: str, custom_id: str | None, tenant_id: str | None, results: list[ModerationResult]) -> list[dict]:
    """The trace rows of ``results`` (``ecoalign.batch.trace_rows`` plus ``tenant_id``); ``custom_id`` None for
    a ``/v1/moderations`` request."""
    rows = trace_rows(run_id, custom_id or "", results)
    for row in rows:
        row["tenant_id"] = tenant_id
        if custom_id is None:
            row["custom_id"] = None
    return rows
