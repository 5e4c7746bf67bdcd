"""Appending finished lines to OUTPUT, each group right after its traces are committed."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ecoalign.moderation.traces import TraceWriter


class Writer:
    """Appends whole lines to OUTPUT: traces first (batched commits), then the lines, so every line in OUTPUT has
    its trace stored. One ``os.write`` per flush on an O_APPEND descriptor."""

    def __init__(self, path: Path, traces: TraceWriter | None, flush_rows: int = 256, flush_s: float = 0.5) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.traces = traces
        self.flush_rows = flush_rows
        self.flush_s = flush_s
        self._lines: list[bytes] = []
        self._rows: list[dict[str, Any]] = []
        self._since = 0.0

    def add(self, lines: list[bytes], rows: list[dict[str, Any]]) -> None:
        if not self._lines:
            self._since = time.monotonic()
        self._lines += lines
        self._rows += rows
        if not self._rows or len(self._rows) >= self.flush_rows or time.monotonic() - self._since >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        if self._rows and self.traces is not None:
            self.traces.write(self._rows)
        data = b"".join(self._lines)
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self._lines, self._rows = [], []

    def close(self) -> None:
        try:
            self.flush()
            os.fsync(self.fd)
        finally:
            os.close(self.fd)
