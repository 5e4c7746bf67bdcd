"""A compact set of custom_ids (duplicates and resume) for inputs of millions of lines."""

from __future__ import annotations

import hashlib


class IdSet:
    """A set of custom_ids, each kept as an 8-byte digest (BLAKE2b) with an optional integer (a line number).

    Why: the runner remembers every custom_id it has seen (duplicates) and, on ``--resume``, every one already in
    OUTPUT; as Python ``str`` keys of a dict or set they cost about 130 bytes each (13 MB per 100,000 lines), here
    12. Digests live in a sorted numpy array (looked up with ``searchsorted``) plus a small dict of recent ones
    that is merged in once it reaches an eighth of the array (so merging costs O(n log n) overall). Two different
    ids share a digest with probability about n² / 2^65 (3e-10 for 100,000 ids, 3e-6 for 10 million); such an id
    would be taken for its twin (reported as a duplicate, or skipped on resume)."""

    _MIN_PENDING = 4096

    def __init__(self) -> None:
        import numpy as np

        self._np = np
        self._keys = np.empty(0, dtype=np.uint64)
        self._values = np.empty(0, dtype=np.int64)
        self._pending: dict[int, int] = {}

    @staticmethod
    def digest(custom_id: str) -> int:
        data = custom_id.encode("utf-8", "surrogatepass")
        return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")

    def __len__(self) -> int:
        return len(self._keys) + len(self._pending)

    def __contains__(self, custom_id: object) -> bool:
        return isinstance(custom_id, str) and self.get(custom_id) is not None

    def get(self, custom_id: str) -> int | None:
        """The value stored with ``custom_id``, ``None`` if it is not in the set."""
        key = self.digest(custom_id)
        value = self._pending.get(key)
        if value is not None:
            return value
        return self._lookup(key)

    def _lookup(self, key: int) -> int | None:
        keys = self._keys
        if not len(keys):
            return None
        i = int(keys.searchsorted(self._np.uint64(key)))
        if i < len(keys) and int(keys[i]) == key:
            return int(self._values[i])
        return None

    def add(self, custom_id: str, value: int = 0) -> None:
        """Add ``custom_id`` (keeping the value of the first add)."""
        self.setdefault(custom_id, value)

    def setdefault(self, custom_id: str, value: int) -> int | None:
        """The value already stored with ``custom_id``; if there is none, store ``value`` and return ``None``."""
        key = self.digest(custom_id)
        seen = self._pending.get(key)
        if seen is None:
            seen = self._lookup(key)
        if seen is not None:
            return seen
        self._pending[key] = value
        if len(self._pending) >= max(self._MIN_PENDING, len(self._keys) // 8):
            self._merge()
        return None

    def _merge(self) -> None:
        np = self._np
        if not self._pending:
            return
        keys = np.concatenate([self._keys, np.fromiter(self._pending.keys(), np.uint64, len(self._pending))])
        values = np.concatenate([self._values, np.fromiter(self._pending.values(), np.int64, len(self._pending))])
        order = keys.argsort(kind="stable")
        self._keys, self._values = keys[order], values[order]
        self._pending = {}

    @property
    def nbytes(self) -> int:
        """Memory of the digests and values (the pending dict counted at about 100 bytes an entry)."""
        return int(self._keys.nbytes + self._values.nbytes) + 100 * len(self._pending)
