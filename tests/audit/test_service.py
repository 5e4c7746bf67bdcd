"""A run scores traces in batches yet a trace the evaluator cannot score fails alone, in order, and is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from ecoalign.audit.evaluators import AuditEvaluator
from ecoalign.audit.imports import TraceLineError, parse_trace
from ecoalign.audit.service import AuditOptions, run_audit
from ecoalign.evaluators.base import NodeToScore, Score
from ecoalign.store.audit_models import AuditResult, AuditRun
from ecoalign.store.db import session_factory, session_scope
from tests.audit import traces as t


class Picky:
    """Scores "bad" steps unsafe, and cannot score a step that says "explode" (as a judge's failing call)."""

    evaluator_id = "picky@1"

    def score_node(self, node: NodeToScore) -> Score:
        if "explode" in node.text:
            raise RuntimeError("the judge is down")
        return Score(safety=0.1 if "bad" in node.text else 0.9, utility=0.5, evaluator=self.evaluator_id)


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_a_failing_trace_fails_alone_whatever_the_batch(sqlite_engine: Engine, batch: int) -> None:
    traces = [parse_trace(t.documented(f"t{i}", ["fine", "bad" if i % 2 else "fine"], "ok")) for i in range(7)]
    traces[4] = parse_trace(t.documented("t4", ["explode"], "ok"))
    items = [(i + 1, trace) for i, trace in enumerate(traces)]
    items.insert(2, (99, TraceLineError("not JSON")))
    lines: list[dict] = []
    sessions = session_factory(sqlite_engine)
    run_id, summary = run_audit(
        sessions, AuditEvaluator(Picky()), items, tenant_id=None, source="import", spec={}, options=AuditOptions(),
        on_line=lines.append, batch=batch, chunk=2,
    )
    assert [line["position"] for line in lines] == [1, 2, 99, 3, 4, 5, 6, 7]
    by_id = {line["id"]: line for line in lines if line["id"]}
    assert by_id["t4"]["error"] == "RuntimeError: the judge is down"
    assert [by_id[f"t{i}"]["process_blind"] for i in (0, 1, 2, 3, 5, 6)] == [False, True, False, True, True, False]
    assert (summary.scored, summary.failed, summary.process_blind) == (6, 2, 3)
    with session_scope(sessions) as s:
        assert s.get(AuditRun, run_id).status == "completed"  # type: ignore[union-attr]
        assert len(s.scalars(select(AuditResult).where(AuditResult.run_id == run_id)).all()) == 8
