"""The compact custom_id set behind duplicate detection and --resume: exact answers across merges, small memory."""

from __future__ import annotations

import random

from ecoalign.bulk.idset import IdSet


def test_ids_and_their_lines_survive_merges() -> None:
    ids = IdSet()
    n = 3 * IdSet._MIN_PENDING + 123  # several merges into the sorted array, some ids still pending
    for i in range(n):
        assert ids.setdefault(f"id-{i}", i + 1) is None
    assert len(ids) == n
    rng = random.Random(3)
    for i in rng.sample(range(n), 500):
        assert f"id-{i}" in ids
        assert ids.get(f"id-{i}") == i + 1
        assert ids.setdefault(f"id-{i}", 0) == i + 1  # the first line stays
    for missing in ("id--1", f"id-{n}", "", "é", "x" * 600):
        assert missing not in ids
        assert ids.get(missing) is None
    assert 5 not in ids
    assert None not in ids


def test_add_keeps_the_first_value_and_unicode_ids_work() -> None:
    ids = IdSet()
    ids.add("naïve-\U0001f600", 7)
    ids.add("naïve-\U0001f600", 9)
    ids.add("lone-surrogate-\udc80", 1)  # json.loads can produce these; they must not raise
    assert ids.get("naïve-\U0001f600") == 7
    assert "lone-surrogate-\udc80" in ids
    assert len(ids) == 2


def test_memory_is_about_twelve_bytes_an_id() -> None:
    ids = IdSet()
    for i in range(100_000):
        ids.add(f"s{i:07d}", i)
    assert len(ids) == 100_000
    assert ids.nbytes < 2.5 * 2**20  # 12 bytes each in the array, plus at most an eighth still in the dict
