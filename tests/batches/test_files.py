"""``ecoalign.batches.files.scan_lines``: every line's place in the file, so a line task reads exactly its bytes."""

from __future__ import annotations

from ecoalign.batches.files import scan_lines


def test_each_line_is_found_at_its_offset_with_its_length() -> None:
    content = b'{"a":1}\n\n{"b":2}\nlast'
    found = list(scan_lines(content, 1 << 20))
    assert [(n, off, size) for n, off, size, _ in found] == [(1, 0, 8), (2, 8, 1), (3, 9, 8), (4, 17, 4)]
    assert all(content[off : off + size] == raw for _, off, size, raw in found)


def test_a_line_over_the_cap_has_no_bytes_but_keeps_its_place() -> None:
    long_line = b"x" * 50 + b"\n"
    content = b"ok\n" + long_line + b"after\n"
    found = list(scan_lines(content, 10))
    assert found[1] == (2, 3, len(long_line), None)  # skipped whole, so the next line's offset is right
    assert found[2] == (3, 3 + len(long_line), 6, b"after\n")


def test_an_over_long_last_line_without_newline() -> None:
    assert list(scan_lines(b"y" * 30, 10)) == [(1, 0, 30, None)]
