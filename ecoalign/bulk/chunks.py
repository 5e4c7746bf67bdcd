"""A chunk of lines moderated: built, scanned in one batch, decided; in this process's threads or, with
``--executor process``, scanned in child processes with the decisions (budget, judge) kept in the parent."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ecoalign.bulk.output import encode, error_line, output_line
from ecoalign.evaluators.base import Scanner, Score
from ecoalign.moderation.inputs import ParseOptions
from ecoalign.moderation.lines import LineError, LineHeader, Task, build_task
from ecoalign.moderation.moderator import Moderator
from ecoalign.moderation.result import ModerationResult, moderation_response
from ecoalign.moderation.traces import trace_rows


@dataclass
class Outcome:
    """What one chunk produced: output lines (encoded), trace rows, and counters."""

    lines: list[bytes] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    items: int = 0
    errors: int = 0
    results: int = 0
    flagged: int = 0
    tokens: int = 0
    decisions: Counter[str] = field(default_factory=Counter)


ChunkFn = Callable[[list[LineHeader]], Outcome]


def moderate_chunk(headers: list[LineHeader], moderator: Moderator, options: ParseOptions, run_id: str) -> Outcome:
    """Build, scan (one batch for the whole chunk) and decide; a failure is confined to its own line."""
    out = Outcome()
    tasks: list[Task] = []
    for header in headers:
        built = build_task(header, options)
        if isinstance(built, LineError):
            out.lines.append(encode(error_line(built)))
            out.errors += 1
        else:
            tasks.append(built)
    flat = [r for t in tasks for r in t.requests]
    try:
        results = moderator.moderate_many(flat)
    except Exception:
        results = None  # one bad item must not sink the chunk: redo item by item
    position = 0
    for task in tasks:
        if results is not None:
            mine = results[position : position + len(task.requests)]
            position += len(task.requests)
        else:
            try:
                mine = moderator.moderate_many(list(task.requests))
            except Exception as exc:
                message = f"line {task.line_no}: moderation failed ({type(exc).__name__}: {exc})"
                out.lines.append(
                    encode(error_line(LineError(task.line_no, task.custom_id, "internal_error", message)))
                )
                out.errors += 1
                continue
        record(out, task.custom_id, mine, moderator.model_id, run_id)
    out.items = len(headers)
    return out


def record(out: Outcome, custom_id: str, results: Sequence[ModerationResult], model: str, run_id: str) -> None:
    out.lines.append(encode(output_line(custom_id, moderation_response(results, model))))
    out.rows += trace_rows(run_id, custom_id, None, results)
    out.results += len(results)
    out.flagged += sum(r.flagged for r in results)
    out.tokens += sum(r.tokens for r in results)
    out.decisions.update(r.decision for r in results)


# Process workers: each child builds its own scanner once and returns scans; decisions stay in the parent, where
# the run budget and the judge live.
_CHILD: dict[str, Any] = {}


def child_init(scanner_factory: Callable[[], Scanner], options: ParseOptions) -> None:
    _CHILD["scanner"] = scanner_factory()
    _CHILD["options"] = options


def child_ready() -> bool:
    Moderator(_CHILD["scanner"]).warm_up()
    return True


def child_scan(headers: list[LineHeader]) -> tuple[list[Task | LineError], list[Score]]:
    options: ParseOptions = _CHILD["options"]
    built = [build_task(h, options) for h in headers]
    requests = [r for b in built if isinstance(b, Task) for r in b.requests]
    moderator = Moderator(_CHILD["scanner"])
    return built, moderator.scan_many(requests) if requests else []


def decide_scanned(
    built: list[Task | LineError], scans: list[Score], moderator: Moderator, run_id: str, n: int
) -> Outcome:
    out = Outcome(items=n)
    position = 0
    for item in built:
        if isinstance(item, LineError):
            out.lines.append(encode(error_line(item)))
            out.errors += 1
            continue
        mine_scans = scans[position : position + len(item.requests)]
        position += len(item.requests)
        results = moderator.moderate_scanned(item.requests, mine_scans)
        record(out, item.custom_id, results, moderator.model_id, run_id)
    return out
