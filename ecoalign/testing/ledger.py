"""An in-memory budget ledger with the same protocol as the database one (``ecoalign.store.ledger``).

Reserve the estimate before a call, settle the real usage after, refund what a failed call did not use.
Every operation is keyed by (node, kind) and idempotent, so a repeated delivery never charges twice, and
``spent + reserved <= total`` holds after every operation. The engine's tests and simulations use it; the
runtime uses the SQL one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ecoalign.engine.search import LedgerView


@dataclass
class _Entry:
    reserved: int
    state: str = "reserved"  # reserved | settled | refunded
    spent: int = 0
    overrun: int = 0


@dataclass
class InMemoryLedger:
    total: int
    spent: int = 0
    reserved: int = 0
    entries: dict[tuple[str, str], _Entry] = field(default_factory=dict)

    def view(self) -> LedgerView:
        return LedgerView(total=self.total, spent=self.spent, reserved=self.reserved)

    def reserve(self, key: str, tokens: int, kind: str = "generate") -> bool:
        """Promise ``tokens`` to a call; False (and nothing recorded) if the budget cannot cover it."""
        entry = self.entries.get((key, kind))
        if entry is not None:
            return entry.state != "refunded"
        if self.spent + self.reserved + tokens > self.total:
            return False
        self.entries[(key, kind)] = _Entry(reserved=tokens)
        self.reserved += tokens
        return True

    def settle(self, key: str, actual: int, kind: str = "generate") -> int:
        """Charge the real usage; more than reserved is charged only as far as the budget allows (the rest is
        recorded as overrun). Returns the tokens charged."""
        entry = self.entries[(key, kind)]
        if entry.state != "reserved":
            return entry.spent
        self.reserved -= entry.reserved
        headroom = self.total - self.spent - self.reserved
        charged = min(actual, headroom)
        entry.spent, entry.overrun, entry.state = charged, actual - charged, "settled"
        self.spent += charged
        return charged

    def refund(self, key: str, kind: str = "generate") -> None:
        entry = self.entries.get((key, kind))
        if entry is None or entry.state != "reserved":
            return
        self.reserved -= entry.reserved
        entry.state = "refunded"

    @property
    def overrun(self) -> int:
        return sum(e.overrun for e in self.entries.values())
