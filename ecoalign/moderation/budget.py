"""The tokens a whole run may spend on escalations, reserved before a judge call and settled after it."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class BudgetSnapshot:
    total: int | None
    spent: int
    reserved: int
    overrun: int

    @property
    def remaining(self) -> int | None:
        return None if self.total is None else max(0, self.total - self.spent - self.reserved)


class RunBudget:
    """Tokens a whole run may spend on escalations, shared by every worker thread.

    ``reserve`` before a judge call (refused, without side effects, if it does not fit next to what is spent and
    reserved); ``settle`` with the server's usage after, or ``refund`` if no call was made. Real usage above the
    reservation is charged anyway (it was spent) and counted in ``overrun``. ``total=None`` is unlimited.
    """

    def __init__(self, total: int | None = None, *, spent: int = 0) -> None:
        if total is not None and total < 0:
            raise ValueError("a run budget must be >= 0")
        self._lock = threading.Lock()
        self._total = total
        self._spent = spent
        self._reserved: dict[int, int] = {}
        self._next = 0
        self._overrun = 0

    def reserve(self, tokens: int) -> int | None:
        """A reservation id, or ``None`` if ``tokens`` do not fit."""
        with self._lock:
            in_hand = sum(self._reserved.values())
            if self._total is not None and self._spent + in_hand + tokens > self._total:
                return None
            self._next += 1
            self._reserved[self._next] = tokens
            return self._next

    def settle(self, reservation: int, used: int) -> None:
        with self._lock:
            held = self._reserved.pop(reservation)
            self._spent += used
            self._overrun += max(0, used - held)

    def refund(self, reservation: int) -> None:
        with self._lock:
            self._reserved.pop(reservation, None)

    def charge(self, tokens: int) -> None:
        """Tokens spent outside a reservation (e.g. counted from an earlier run being resumed)."""
        with self._lock:
            self._spent += tokens

    def snapshot(self) -> BudgetSnapshot:
        with self._lock:
            return BudgetSnapshot(self._total, self._spent, sum(self._reserved.values()), self._overrun)

    @property
    def exhausted(self) -> bool:
        snap = self.snapshot()
        return snap.total is not None and snap.spent >= snap.total
