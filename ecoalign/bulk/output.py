"""OUTPUT's lines: OpenAI Batch output lines (a result or an error), encoded one per line, and read back."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ecoalign.moderation.lines import LineError


def output_line(custom_id: str, body: dict[str, Any], status_code: int = 200) -> dict[str, Any]:
    return {
        "id": f"batch_req_{uuid.uuid4().hex}",
        "custom_id": custom_id,
        "response": {"status_code": status_code, "request_id": f"req_{uuid.uuid4().hex}", "body": body},
        "error": None,
    }


def error_line(error: LineError) -> dict[str, Any]:
    return {
        "id": f"batch_req_{uuid.uuid4().hex}",
        "custom_id": error.custom_id,
        "response": None,
        "error": {"code": error.code, "message": error.message, "line": error.line_no},
    }


def encode(line: dict[str, Any]) -> bytes:
    return (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def parse_output_line(raw: bytes) -> dict[str, Any] | None:
    try:
        line = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return line if isinstance(line, dict) else None


def iter_output(path: Path) -> Iterable[dict[str, Any]]:
    """The parseable lines of an OUTPUT file, streamed (for tests, benchmarks and reports)."""
    with path.open("rb") as f:
        for raw in f:
            line = parse_output_line(raw)
            if line is not None:
                yield line
