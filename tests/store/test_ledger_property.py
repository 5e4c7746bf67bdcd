"""Property: any sequence of reserve/settle/refund/release_all (with repeats and redeliveries) matches a
reference model exactly, never spends beyond the budget, and keeps the counters equal to the ledger."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.store import ledger
from ecoalign.store.db import session_scope

from .helpers import assert_consistent, new_job, new_tenant, tenant_counters

KEYS = ["a", "b", "c", "d"]
KINDS = ["generate", "evaluate"]
DAY = date(2026, 5, 1)

op = st.one_of(
    st.tuples(st.just("reserve"), st.sampled_from(KEYS), st.sampled_from(KINDS), st.integers(0, 120)),
    st.tuples(st.just("settle"), st.sampled_from(KEYS), st.sampled_from(KINDS), st.integers(0, 160)),
    st.tuples(st.just("refund"), st.sampled_from(KEYS), st.sampled_from(KINDS), st.just(0)),
    st.tuples(st.just("release_all"), st.just(""), st.just(""), st.just(0)),
)


@dataclass
class Model:
    """The ledger's specification, in plain Python."""

    budget: int
    tenant_total: int | None
    tenant_daily: int | None
    spent: int = 0
    reserved: int = 0
    entries: dict[tuple[str, str], tuple[str, int, int]] = field(default_factory=dict)  # state, reserved, spent

    def _room(self, held: int) -> int:
        """What a charge may take after releasing ``held`` (the job, tenant and day caps all coincide here:
        one job per tenant, one day)."""
        rooms = [self.budget - self.spent - (self.reserved - held)]
        for cap in (self.tenant_total, self.tenant_daily):
            if cap is not None:
                rooms.append(cap - self.spent - (self.reserved - held))
        return min(rooms)

    def reserve(self, key: tuple[str, str], tokens: int) -> bool:
        if key in self.entries:
            return self.entries[key][0] in ("reserved", "settled")
        if tokens > self._room(0):
            return False
        self.entries[key] = ("reserved", tokens, 0)
        self.reserved += tokens
        return True

    def settle(self, key: tuple[str, str], actual: int) -> int:
        if key not in self.entries:  # post-paid: as if 0 had been reserved
            self.entries[key] = ("reserved", 0, 0)
        state, res, spent = self.entries[key]
        if state == "settled":
            return spent
        held = res if state == "reserved" else 0
        charge = max(0, min(actual, self._room(held)))
        self.reserved -= held
        self.spent += charge
        self.entries[key] = ("settled", res, charge)
        return charge

    def refund(self, key: tuple[str, str]) -> bool:
        if key not in self.entries or self.entries[key][0] != "reserved":
            return False
        _, res, _ = self.entries[key]
        self.reserved -= res
        self.entries[key] = ("refunded", res, 0)
        return True

    def release_all(self) -> int:
        released = 0
        for key, (state, res, spent) in list(self.entries.items()):
            if state == "reserved":
                released += res
                self.entries[key] = ("refunded", res, spent)
        self.reserved -= released
        return released


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    budget=st.integers(0, 400),
    tenant_total=st.none() | st.integers(0, 400),
    tenant_daily=st.none() | st.integers(0, 400),
    ops=st.lists(op, max_size=30),
)
def test_ledger_matches_model(
    db: sessionmaker[Session],
    budget: int,
    tenant_total: int | None,
    tenant_daily: int | None,
    ops: list[tuple[str, str, str, int]],
) -> None:
    tenant = new_tenant(db, total=tenant_total, daily=tenant_daily)
    job = new_job(db, budget, tenant_id=tenant)
    model = Model(budget, tenant_total, tenant_daily)
    for name, key, kind, amount in ops:
        with session_scope(db) as s:
            if name == "reserve":
                assert ledger.reserve(s, job, key, kind, amount, tenant_id=tenant, day=DAY) == model.reserve(
                    (key, kind), amount
                )
            elif name == "settle":
                assert ledger.settle(s, job, key, kind, amount, day=DAY) == model.settle((key, kind), amount)
            elif name == "refund":
                assert ledger.refund(s, job, key, kind) == model.refund((key, kind))
            else:
                assert ledger.release_all(s, job) == model.release_all()
        with session_scope(db) as s:
            snap = assert_consistent(s, job)  # spent + reserved <= total; counters == ledger sums
            assert (snap.spent, snap.reserved) == (model.spent, model.reserved)
            t_spent, t_reserved, days = tenant_counters(s, tenant)
            assert (t_spent, t_reserved) == (model.spent, model.reserved)
            assert all((sp, r) == (model.spent, model.reserved) for _, sp, r in days)
            if tenant_total is not None:
                assert t_spent + t_reserved <= tenant_total
            if tenant_daily is not None:
                assert t_spent + t_reserved <= tenant_daily
    with session_scope(db) as s:
        rows = {(e.node_id, e.kind): (e.state, e.reserved_tokens, e.spent_tokens) for e in ledger.entries(s, job)}
    assert rows == model.entries
