"""Reading INPUT: raw lines in bounded pieces (a huge line cannot exhaust memory) and a fast line count."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def iter_raw_lines(stream: BinaryIO, max_line_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """``(line_no, bytes)`` for each line, 1-based; ``None`` for a line over ``max_line_bytes`` (whose rest is read
    and dropped in bounded pieces, so one huge line cannot exhaust memory)."""
    line_no = 0
    while True:
        line = stream.readline(max_line_bytes + 1)
        if not line:
            return
        line_no += 1
        if len(line) > max_line_bytes:
            while not line.endswith(b"\n"):
                line = stream.readline(1 << 20)
                if not line:
                    break
            yield line_no, None
            continue
        yield line_no, line


def count_lines(path: Path) -> int:
    """Lines in a file, read in 1 MiB blocks (for the progress bar's total)."""
    count = 0
    last = b"\n"
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")
