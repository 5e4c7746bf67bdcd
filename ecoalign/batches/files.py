"""Stored files of the Batch API: uploads, a tenant's file and its bytes, and where each line of an input file is.

Messages carry a line's place (offset, length), never its content: a line task reads just its bytes.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from ecoalign.batches.errors import NotFound
from ecoalign.store import batches as store
from ecoalign.store.batch_models import StoredFile


@dataclass(frozen=True)
class LineRef:
    """Where one pending line is: its row and its bytes in the input file (the message carries no content)."""

    item_id: int
    offset: int
    length: int


# -- the API's files ----------------------------------------------------------------------------------------------
def save_upload(session: Session, tenant_id: str, purpose: str, filename: str, content: bytes) -> StoredFile:
    """Keep an uploaded file (bytes in the row) with its size and digest."""
    stored = StoredFile(tenant_id=tenant_id, purpose=purpose, filename=filename, bytes=len(content),
                        sha256=hashlib.sha256(content).hexdigest(), content=content)
    return store.add_file(session, stored)


def owned_file(session: Session, file_id: str, tenant_id: str) -> StoredFile:
    """The tenant's file; ``NotFound`` if it does not exist or belongs to another tenant."""
    found = store.owned_file(session, file_id, tenant_id)
    if found is None:
        raise NotFound("file")
    return found


def file_bytes(f: StoredFile) -> bytes:
    """A file's content: from its row, or from disk when it is stored at ``path``."""
    if f.content is not None:
        return f.content
    return Path(f.path or "").read_bytes()


# -- input files --------------------------------------------------------------------------------------------------
def input_bytes(session: Session, file_id: str) -> bytes:
    """The whole input file (empty if it is gone)."""
    row = store.file_location(session, file_id)
    if row is None:
        return b""
    return bytes(row.content) if row.content is not None else Path(row.path).read_bytes()


def request_line_count(session: Session, file_id: str) -> int:
    """The non-blank lines of a stored input file: the requests a batch of it will run."""
    return sum(1 for line in input_bytes(session, file_id).splitlines() if line.strip())


def scan_lines(content: bytes, max_line_bytes: int) -> Iterator[tuple[int, int, int, bytes | None]]:
    """``(line_no, offset, length, raw)`` for every line (1-based); ``raw`` is None for a line over the cap."""
    stream = io.BytesIO(content)
    line_no = offset = 0
    while True:
        raw = stream.readline(max_line_bytes + 1)
        if not raw:
            return
        line_no += 1
        start, size = offset, len(raw)
        if size > max_line_bytes and not raw.endswith(b"\n"):
            size += _skip_rest_of_line(stream)
            offset += size
            yield line_no, start, size, None
            continue
        offset += size
        yield line_no, start, size, raw


def _skip_rest_of_line(stream: io.BytesIO) -> int:
    """Read past the end of an over-long line; how many bytes it had beyond what was read."""
    skipped = 0
    while True:
        raw = stream.readline(1 << 20)
        skipped += len(raw)
        if not raw or raw.endswith(b"\n"):
            return skipped


def pending_refs(session: Session, batch_id: str, file_id: str, max_line_bytes: int) -> list[LineRef]:
    """The unfinished lines of a batch with their places in the file (one pass over the file)."""
    items = store.unfinished_items(session, batch_id)
    if not items:
        return []
    return [LineRef(items[line_no], offset, length)
            for line_no, offset, length, _ in scan_lines(input_bytes(session, file_id), max_line_bytes)
            if line_no in items]


def line_bytes(session: Session, file_id: str, offset: int, length: int) -> bytes:
    """Just this line's bytes (the file is not read whole)."""
    return store.file_slice(session, file_id, offset, length)
