"""What a line produced (a result or an error, its tokens and traces), and the error shapes shared by both kinds
of line."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from ecoalign.batches.claim import Claimed
from ecoalign.batches.runtime import BatchRuntime
from ecoalign.moderation.lines import LineError, LineHeader, parse_header


@dataclass
class LineOutcome:
    """What a line produced: a result (the output line's ``response``) or an error, its tokens and traces."""

    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    tokens: int = 0
    traces: list[dict[str, Any]] = field(default_factory=list)


def answered(body: dict[str, Any], tokens: int, traces: list[dict[str, Any]] | None = None) -> LineOutcome:
    """A line answered as its endpoint would have answered it over HTTP (status 200 and the body)."""
    return LineOutcome(result={"status_code": 200, "request_id": f"req_{uuid.uuid4().hex}", "body": body},
                       tokens=tokens, traces=traces or [])


def line_error(claimed: Claimed, code: str, message: str, **extra: Any) -> LineOutcome:
    """A failed line; the message names the line."""
    return LineOutcome(error={"code": code, "message": f"line {claimed.line_no}: {message}", "line": claimed.line_no,
                              **extra})


def parse_error(claimed: Claimed, error: LineError) -> LineOutcome:
    """A line the parser refused (its message already names the line)."""
    return LineOutcome(error={"code": error.code, "message": error.message, "line": claimed.line_no})


def header_of(rt: BatchRuntime, claimed: Claimed, raw: bytes) -> LineHeader | LineOutcome:
    """The line's header, or the outcome of a line that has none."""
    header = parse_header(raw, claimed.line_no, rt.options())
    if isinstance(header, LineHeader):
        return header
    if isinstance(header, LineError):
        return parse_error(claimed, header)
    return line_error(claimed, "invalid_line", "the line is empty")
