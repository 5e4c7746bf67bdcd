"""Exact-duplicate removal in bounded memory: a set of 64-bit row digests in one numpy array.

Why not a Python ``set``: a set of ints costs about 60-70 bytes a row (a 32-byte int object plus its slot), so
100 million rows would need 6-7 GB. This table stores only the digests, open-addressed with linear probing and
kept at most half full, so it holds ``n`` rows in 16 to 32 bytes each (8-byte slots, 2n to 4n of them); while it
doubles, the old and the new table exist together for a moment (48 bytes a row). 1,000,000 rows: 16-32 MB.

What 64 bits cost: two different rows share a digest with probability about n²/2^65 (1.4e-8 for a million rows,
1.4e-4 for a hundred million), and then the second would be dropped as a duplicate; the manifest states it.
"""

from __future__ import annotations

import numpy as np

EMPTY = 0  # an empty slot; the digest 0 is stored as 1 (one more collision in 2^64)


class DigestSet:
    """Digests seen so far. ``add`` says whether a digest is new (and remembers it)."""

    def __init__(self, capacity: int = 1 << 16) -> None:
        size = 1 << max(4, (capacity - 1).bit_length())
        self._table = np.zeros(size, dtype=np.uint64)
        self._mask = size - 1
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        return int(self._table.nbytes)

    def add(self, digest: int) -> bool:
        value = digest or 1
        if self._insert(self._table, self._mask, value):
            self._count += 1
            if self._count * 2 > len(self._table):
                self._grow()
            return True
        return False

    @staticmethod
    def _insert(table: np.ndarray, mask: int, value: int) -> bool:
        slot = value & mask
        while True:
            current = int(table[slot])
            if current == EMPTY:
                table[slot] = value
                return True
            if current == value:
                return False
            slot = (slot + 1) & mask

    def _grow(self) -> None:
        old = self._table[self._table != EMPTY]
        size = len(self._table) * 2
        table = np.zeros(size, dtype=np.uint64)
        mask = size - 1
        for value in old.tolist():
            self._insert(table, mask, value)
        self._table, self._mask = table, mask
