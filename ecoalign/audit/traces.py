"""The trace resource (``GET /v1/traces``, ``GET /v1/traces/{id}``): what a trace is and how it reads back.

A trace is what the store already keeps, read where it lives: ``kind = "job"`` is an alignment job with its thought
graph (the same ``job_view`` and ``graph_view`` as ``GET /v1/jobs/{id}`` and ``/graph``, plus the chosen path as
steps and the audits of it); ``kind = "moderation"`` is one moderation decision (its OpenAI result and its trace).
The SQL is ``ecoalign.store.traces``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ecoalign.categories import MODERATION_CATEGORIES
from ecoalign.runtime.report import graph_view, iso, job_view
from ecoalign.store import audits, traces
from ecoalign.store.batch_models import ModerationTrace
from ecoalign.store.models import Job
from ecoalign.store.pagination import Page


class TraceFilterError(ValueError):
    """A filter that cannot be applied; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def make_filter(values: dict[str, Any]) -> traces.TraceFilter:
    """A checked ``TraceFilter`` from named values (query parameters, or ``--jobs`` pairs as strings)."""
    known = traces.TraceFilter.names()
    for name in values:
        if name not in known:
            raise TraceFilterError(name, f"unknown filter {name!r}: expected one of {', '.join(known)}")
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        out[name] = _convert(name, value)
    flt = traces.TraceFilter(**out)
    lo, hi = flt.min_path_safety, flt.max_path_safety
    if lo is not None and hi is not None and lo > hi:
        raise TraceFilterError("min_path_safety", f"min_path_safety {lo} is above max_path_safety {hi}")
    return flt


def _convert(name: str, value: Any) -> Any:
    if name in ("min_path_safety", "max_path_safety"):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise TraceFilterError(name, f"{name} must be a number, not {value!r}") from None
        if not 0.0 <= number <= 1.0:
            raise TraceFilterError(name, f"{name} must be within 0..1")
        return number
    if name in ("created_after", "created_before"):
        if isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(str(value))
        except ValueError:
            raise TraceFilterError(name, f"{name} must be an ISO 8601 date or time, not {value!r}") from None
    if name == "kind" and value not in traces.TRACE_KINDS:
        raise TraceFilterError(name, f"kind must be one of {', '.join(traces.TRACE_KINDS)}")
    if name == "category" and value not in MODERATION_CATEGORIES:
        raise TraceFilterError(name, f"unknown category {value!r}: expected an OpenAI moderation category")
    if not isinstance(value, str) or not value or len(value) > 200 or not value.isprintable():
        raise TraceFilterError(name, f"{name} must be a non-empty string of at most 200 printable characters")
    return value


def parse_filter_pairs(text: str) -> traces.TraceFilter:
    """``ecoalign audit --jobs``: ``key=value,key=value`` with the keys of ``GET /v1/traces`` (``all``: no filter)."""
    if text.strip() in ("", "all"):
        return traces.TraceFilter()
    values: dict[str, str] = {}
    for pair in text.split(","):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise TraceFilterError(pair, f"{pair!r} is not key=value")
        values[key.strip()] = value.strip()
    return make_filter(values)


def summary_view(row: Any) -> dict[str, Any]:
    """A trace as the list shows it (a row of ``store.traces.traces_union``)."""
    return {
        "id": row.id,
        "object": "trace",
        "kind": row.kind,
        "created_at": iso(row.created_at),
        "status": row.status,
        "decision": row.decision,
        "path_safety": row.path_safety,
        "strategy": row.strategy,
    }


def list_view(page: Page[Any]) -> dict[str, Any]:
    return {**page.openai_list(summary_view), "next_cursor": page.next_cursor}


def _audits_view(session: Session, scope: traces.Scope, trace_id: str) -> list[dict[str, Any]]:
    return [
        {
            "audit_id": run.id,
            "evaluator": run.evaluator,
            "aggregate": run.aggregate,
            "tau": run.tau,
            "created_at": iso(run.created_at),
            "process_blind": result.process_blind,
            "path_safety": result.path_safety,
            "answer_safety": result.answer_safety,
            "weakest_step": result.weakest_step,
            "step_safeties": result.step_safeties,
            "error": result.error,
        }
        for run, result in audits.results_for_trace(session, scope, trace_id)
    ]


def _job_trace(session: Session, scope: traces.Scope, job: Job) -> dict[str, Any]:
    path = [n for n in traces.path_nodes(session, job) if n.kind != "root"]
    return {
        "id": job.id,
        "object": "trace",
        "kind": "job",
        "created_at": iso(job.created_at),
        "status": job.status,
        "decision": job.decision,
        "path_safety": job.path_safety,
        "strategy": job.strategy,
        "steps": [{"node_id": n.id, "kind": n.kind, "text": n.text, "safety": n.safety, "evaluator": n.evaluator}
                  for n in path],
        "job": job_view(job),
        "graph": graph_view(session, job.id),
        "audits": _audits_view(session, scope, job.id),
    }


def _moderation_trace(row: ModerationTrace) -> dict[str, Any]:
    scan = (row.trace or {}).get("scan") or {}
    return {
        "id": row.trace_id,
        "object": "trace",
        "kind": "moderation",
        "created_at": iso(row.created_at),
        "status": "completed",
        "decision": row.decision,
        "path_safety": scan.get("safety"),
        "strategy": None,
        "flagged": row.flagged,
        "custom_id": row.custom_id,
        "result": row.result,
        "trace": row.trace,
    }


def trace_view(session: Session, scope: traces.Scope, trace_id: str) -> dict[str, Any] | None:
    """The whole trace ``trace_id`` within the scope, or None (none, or another tenant's)."""
    found = traces.find_trace(session, scope, trace_id)
    if found is None:
        return None
    if isinstance(found, Job):
        return _job_trace(session, scope, found)
    return _moderation_trace(found)
