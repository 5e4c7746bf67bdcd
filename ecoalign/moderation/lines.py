"""One JSONL line as a moderation task: its JSON and ``custom_id`` first (``parse_header``, cheap, done by the
reader in input order), then its content (``build_task``: the item parsed by ``ecoalign.moderation.inputs``).

The same code reads the lines of ``ecoalign moderate`` (``ecoalign.bulk``) and of the Batch API, so a line means
the same thing in a file on disk and in an uploaded batch. A line is either the OpenAI Batch form ``{custom_id,
method: "POST", url: "/v1/moderations", body: {input}}`` or the simple form ``{custom_id, text, images}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ecoalign.content import Request
from ecoalign.moderation.inputs import InputError, ParseOptions, parse_input, parse_simple

MODERATIONS_URL = "/v1/moderations"


@dataclass(frozen=True)
class LineError:
    """A line that produces an error line instead of a result."""

    line_no: int
    custom_id: str | None
    code: str
    message: str


@dataclass(frozen=True)
class LineHeader:
    """A line whose JSON and ``custom_id`` are fine; its content is checked later (in a worker)."""

    line_no: int
    custom_id: str
    obj: dict[str, Any]


@dataclass(frozen=True)
class Task:
    """A checked line: one request per result (a list ``input`` gives several); ``input_kind`` is how the input
    was written (``text`` | ``texts`` | ``parts`` | ``simple``), so a client can send it on unchanged."""

    line_no: int
    custom_id: str
    requests: tuple[Request, ...]
    input_kind: str


def parse_header(raw: bytes | None, line_no: int, options: ParseOptions) -> LineHeader | LineError | None:
    """JSON, object, ``custom_id``; ``None`` for a blank line; ``raw`` None is a line over the size limit."""
    if raw is None:
        return LineError(line_no, None, "line_too_large", f"line {line_no}: over {options.max_line_bytes} bytes")
    if not raw.strip():
        return None
    try:
        obj = json.loads(raw)
    except UnicodeDecodeError:
        return LineError(line_no, None, "invalid_json", f"line {line_no}: not UTF-8 text")
    except json.JSONDecodeError as exc:
        return LineError(
            line_no, None, "invalid_json", f"line {line_no}: malformed JSON ({exc.msg} at column {exc.colno})"
        )
    if not isinstance(obj, dict):
        return LineError(line_no, None, "invalid_line", f"line {line_no}: a line must be a JSON object")
    return _custom_id_error(obj.get("custom_id"), line_no, options) or LineHeader(line_no, obj["custom_id"], obj)


def _custom_id_error(custom_id: Any, line_no: int, options: ParseOptions) -> LineError | None:
    if custom_id is None or (isinstance(custom_id, str) and not custom_id.strip()):
        return LineError(line_no, None, "missing_custom_id", f"line {line_no}: custom_id is missing or empty")
    if not isinstance(custom_id, str):
        return LineError(line_no, None, "invalid_custom_id", f"line {line_no}: custom_id must be a string")
    if len(custom_id) > options.max_custom_id_chars:
        return LineError(
            line_no, None, "invalid_custom_id", f"line {line_no}: custom_id is over {options.max_custom_id_chars} chars"
        )
    return None


def is_batch_form(obj: dict[str, Any]) -> bool:
    """Whether a line is written in the OpenAI Batch form (else it is the simple form)."""
    return any(k in obj for k in ("method", "url", "body"))


def build_task(header: LineHeader, options: ParseOptions) -> Task | LineError:
    """Check a line's content and load its images: a ``Task``, or the error line's reason."""
    try:
        obj = header.obj
        if is_batch_form(obj):
            requests, kind = _batch_form(obj, options)
        else:
            requests, kind = parse_simple(obj, options), "simple"
    except InputError as bad:
        return LineError(header.line_no, header.custom_id, bad.code, f"line {header.line_no}: {bad.message}")
    return Task(header.line_no, header.custom_id, tuple(requests), kind)


def _batch_form(obj: dict[str, Any], options: ParseOptions) -> tuple[list[Request], str]:
    method = obj.get("method", "POST")
    if method != "POST":
        raise InputError("invalid_method", f"method must be POST, got {method!r}")
    url = obj.get("url")
    if url != MODERATIONS_URL:
        raise InputError("invalid_url", f"url must be {MODERATIONS_URL}, got {url!r}")
    body = obj.get("body")
    if not isinstance(body, dict):
        raise InputError("invalid_body", "body must be an object with an input")
    if "input" not in body:
        raise InputError("invalid_body", "body.input is missing")
    return parse_input(body["input"], options)
