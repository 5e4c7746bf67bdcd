"""Audit runs, one path for the CLI and the API: score traces (imported lines or stored jobs), store every result under
a new run versioned by the evaluator id, and summarise.

Why the run is written as it goes (results in batches of ``chunk``, each its own transaction): an audit of many
traces keeps constant memory, and a crash leaves a ``running`` run with the results so far rather than nothing.
A trace that cannot be read or scored is stored with its error and counted; the others go on.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ecoalign.audit.evaluators import AuditEvaluator
from ecoalign.audit.imports import AuditTrace, OriginalScores, TraceLineError
from ecoalign.audit.report import AuditSummary
from ecoalign.audit.scoring import AGGREGATES, Aggregate, TraceAudit, audit_traces
from ecoalign.store import audits, traces
from ecoalign.store.audit_models import AuditResult
from ecoalign.store.db import run_in_transaction
from ecoalign.store.models import Job

log = logging.getLogger(__name__)

Item = tuple[int, AuditTrace | TraceLineError]  # a position (an import's line number) and its trace, or its error
ResultCallback = Callable[[dict[str, Any]], None]  # gets each report line as it is stored


class AuditOptionsError(ValueError):
    """An aggregate or tau out of range."""


@dataclass(frozen=True)
class AuditOptions:
    aggregate: Aggregate = "min"
    tau: float = 0.5

    def __post_init__(self) -> None:
        if self.aggregate not in AGGREGATES:
            raise AuditOptionsError(f"aggregate must be min or mean, not {self.aggregate!r}")
        if not 0.0 <= self.tau <= 1.0:
            raise AuditOptionsError(f"tau must be within 0..1, not {self.tau}")


# -- stored jobs as traces -------------------------------------------------------------------------------------------
def job_trace(session: Session, job: Job) -> AuditTrace:
    """A job's chosen path as a trace: its thoughts are the steps, its terminal answer or refusal the answer; the
    nodes' stored scores are the original scores (read, never written)."""
    from ecoalign.runtime.jobspec import job_spec

    nodes = [n for n in traces.path_nodes(session, job) if n.kind != "root"]
    if not nodes or nodes[-1].kind not in ("answer", "refusal"):
        raise TraceLineError(f"job {job.id} has no chosen path to an answer (status {job.status})")
    steps, answer = nodes[:-1], nodes[-1]
    evaluators = "+".join(dict.fromkeys(n.evaluator for n in nodes if n.evaluator)) or "unknown"
    original = OriginalScores(evaluators, tuple(n.safety for n in steps), answer.safety)
    return AuditTrace(
        job.id, job_spec(job).request, tuple(n.text for n in steps), answer.text, kind="job", original=original
    )


def job_items(
    sessions: sessionmaker[Session], scope: traces.Scope, flt: traces.TraceFilter, *, page_size: int = 100
) -> Iterator[Item]:
    """The jobs ``flt`` selects, newest first, as audit items; each page is read in its own short transaction."""
    flt = dataclasses.replace(flt, kind="job")
    after: str | None = None
    done = 0

    def page(session: Session) -> tuple[list[Item], str | None]:
        listed = traces.list_traces(session, scope, flt, limit=page_size, after=after)
        items: list[Item] = []
        for position, row in enumerate(listed.items, start=done + 1):
            job = session.get(Job, row.id)
            try:
                items.append((position, job_trace(session, job) if job else TraceLineError(f"no job {row.id}")))
            except TraceLineError as exc:
                items.append((position, exc))
        return items, listed.next_cursor

    while True:
        items, after = run_in_transaction(sessions, page)
        done += len(items)
        yield from items
        if after is None:
            return


# -- one run ---------------------------------------------------------------------------------------------------------
def _result_row(position: int, trace_id: str | None, kind: str, audit: TraceAudit | None, error: str | None) -> dict:
    if audit is None:
        empty = dict.fromkeys(("process_blind", "path_safety", "answer_safety", "weakest_step", "step_safeties"))
        return {"position": position, "trace_id": trace_id, "trace_kind": kind, **empty, "original": None,
                "error": error}
    v = audit.verdict
    return {
        "position": position,
        "trace_id": trace_id,
        "trace_kind": kind,
        "process_blind": v.process_blind,
        "path_safety": v.path_safety,
        "answer_safety": v.answer_safety,
        "weakest_step": v.weakest_step,
        "step_safeties": list(audit.step_safeties),
        "original": audit.original,
        "error": None,
    }


def report_line(row: Mapping[str, Any] | AuditResult) -> dict[str, Any]:
    """One JSONL report line of a stored result (the CLI's file and ``GET /v1/audits/{id}/report`` alike)."""
    get: Callable[[str], Any] = row.get if isinstance(row, Mapping) else (lambda name: getattr(row, name))
    line: dict[str, Any] = {"id": get("trace_id"), "kind": get("trace_kind"), "position": get("position")}
    if get("error") is not None:
        return {**line, "error": get("error")}
    line.update(
        process_blind=get("process_blind"),
        path_safety=round(get("path_safety"), 6),
        answer_safety=round(get("answer_safety"), 6),
        weakest_step=get("weakest_step"),
        step_safeties=[round(s, 6) for s in get("step_safeties") or []],
    )
    original = get("original")
    if original is not None:
        line["original"] = original
    return line


def _error_row(position: int, trace: AuditTrace | TraceLineError, exc: Exception) -> dict:
    trace_id = trace.trace_id if isinstance(trace, TraceLineError) else trace.id
    return _result_row(position, trace_id, "import" if isinstance(trace, TraceLineError) else trace.kind, None,
                       f"{type(exc).__name__}: {exc}")


def _score_group(evaluator: AuditEvaluator, group: list[Item], options: AuditOptions) -> list[tuple[dict, Any]]:
    """(result row, audit or None) of each item, in order. The readable traces are scored together; if that fails,
    each alone, so a trace the evaluator cannot score (a judge's HTTP error...) fails alone."""
    out: dict[int, tuple[dict, Any]] = {}
    readable = [(i, position, trace) for i, (position, trace) in enumerate(group) if isinstance(trace, AuditTrace)]
    for i, (position, trace) in enumerate(group):
        if isinstance(trace, TraceLineError):
            out[i] = (_result_row(position, trace.trace_id, "import", None, str(trace)), None)
    tau, aggregate = options.tau, options.aggregate
    audits_: list[TraceAudit] | None
    try:
        audits_ = audit_traces(evaluator.evaluator, [trace for _, _, trace in readable], tau=tau, aggregate=aggregate)
    except Exception:  # find the one that fails
        audits_ = None
    for k, (i, position, trace) in enumerate(readable):
        if audits_ is not None:
            audit = audits_[k]
        else:
            try:
                audit = audit_traces(evaluator.evaluator, [trace], tau=tau, aggregate=aggregate)[0]
            except Exception as exc:
                log.warning("audit: trace %s at %d not scored: %s: %s", trace.id, position, type(exc).__name__, exc)
                out[i] = (_error_row(position, trace, exc), None)
                continue
        out[i] = (_result_row(position, trace.id, trace.kind, audit, None), audit)
    return [out[i] for i in range(len(group))]


def _groups(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    iterator = iter(items)
    while group := list(itertools.islice(iterator, size)):
        yield group


def run_audit(
    sessions: sessionmaker[Session],
    evaluator: AuditEvaluator,
    items: Iterable[Item],
    *,
    tenant_id: str | None,
    source: str,
    spec: dict[str, Any],
    options: AuditOptions,
    on_line: ResultCallback | None = None,
    chunk: int = 100,
    batch: int = 8,
) -> tuple[str, AuditSummary]:
    """Audit every item under a new run, ``batch`` traces per evaluator call; returns the run id and its summary
    (also stored on the run)."""
    summary = AuditSummary(evaluator.evaluator_id, options.aggregate, options.tau)
    run_id = run_in_transaction(
        sessions,
        lambda s: audits.create_run(
            s, tenant_id=tenant_id, evaluator=evaluator.evaluator_id, aggregate=options.aggregate,
            tau=options.tau, source=source, spec=spec,
        ).id,
    )
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        rows = list(pending)
        run_in_transaction(sessions, lambda s: audits.add_results(s, run_id, rows))
        pending.clear()

    try:
        for group in _groups(items, batch):
            for row, audit in _score_group(evaluator, group, options):
                if audit is None:
                    summary.add_error(row["position"], row["trace_id"], row["error"])
                else:
                    summary.add(audit)
                pending.append(row)
                if on_line is not None:
                    on_line(report_line(row))
            if len(pending) >= chunk:
                flush()
        flush()
    except BaseException:
        run_in_transaction(sessions, lambda s: audits.finish_run(s, run_id, "failed", summary.to_json()))
        raise
    run_in_transaction(sessions, lambda s: audits.finish_run(s, run_id, "completed", summary.to_json()))
    return run_id, summary


def run_view(run: Any) -> dict[str, Any]:
    """An audit run as the API returns it."""
    return {
        "id": run.id,
        "object": "audit",
        "status": run.status,
        "evaluator": run.evaluator,
        "aggregate": run.aggregate,
        "tau": run.tau,
        "source": run.source,
        "spec": run.spec,
        "summary": run.summary,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


# -- an audit for a tenant (POST /v1/audits) -------------------------------------------------------------------------
class TooManyTraces(ValueError):
    """An audit request over the synchronous limit; ``field`` names what to shrink."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def imported_items(objects: list[Any]) -> list[Item]:
    """Traces sent in a request body (data-URL images only): each element fails alone, named by its 1-based
    position."""
    from ecoalign.audit.imports import named_error, parse_trace

    items: list[Item] = []
    for position, obj in enumerate(objects, start=1):
        try:
            items.append((position, parse_trace(obj)))
        except TraceLineError as exc:
            items.append((position, named_error(exc, obj)))
    return items


def audit_for_tenant(
    sessions: sessionmaker[Session],
    evaluator: AuditEvaluator,
    tenant_id: str,
    *,
    imported: list[Any] | None,
    jobs: traces.TraceFilter | None,
    options: AuditOptions,
    max_traces: int,
) -> str:
    """Audit the tenant's jobs ``jobs`` selects, or the ``imported`` traces, now; returns the run's id.

    Raises ``TooManyTraces`` over ``max_traces`` (larger audits are for ``ecoalign audit``)."""
    scope = traces.Scope(tenant_id=tenant_id)
    if imported is not None:
        if len(imported) > max_traces:
            raise TooManyTraces("traces", f"{len(imported)} traces, over the limit of {max_traces} per request")
        items: Iterable[Item] = imported_items(imported)
        source, spec = "import", dict[str, Any](traces=len(imported))
    else:
        flt = jobs or traces.TraceFilter()
        flt = dataclasses.replace(flt, kind="job")
        page = run_in_transaction(sessions, lambda s: traces.list_traces(s, scope, flt, limit=max_traces))
        if page.has_more:
            raise TooManyTraces("jobs", f"more than {max_traces} jobs match; narrow the filter or use ecoalign audit")
        items = job_items(sessions, scope, flt)
        chosen = {k: _jsonable(v) for k, v in dataclasses.asdict(flt).items() if v is not None}
        source, spec = "jobs", {"jobs": chosen}
    run_id, _ = run_audit(
        sessions, evaluator, items, tenant_id=tenant_id, source=source, spec=spec, options=options
    )
    return run_id


def _jsonable(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
