"""Jobs written by the real runtime (in-process, a real OpenAI-compatible server: the emulator) read back as traces and
audited: re-scored by the evaluator that scored them, an audit reproduces their stored scores exactly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.audit.evaluators import AuditEvaluator
from ecoalign.audit.service import AuditOptions, job_items, run_audit
from ecoalign.audit.traces import trace_view
from ecoalign.content import Request
from ecoalign.engine.policy import Policy
from ecoalign.evaluators.heuristic import HeuristicNodeEvaluator, HeuristicScanner
from ecoalign.providers.openai_http import OpenAIChatProvider
from ecoalign.runtime import controller
from ecoalign.runtime.inprocess import run_job
from ecoalign.runtime.services import Services
from ecoalign.store import traces
from ecoalign.store.db import run_in_transaction, session_factory
from ecoalign.testing.emulator import EmulatorServer

THOUGHT = "Consider which tools a locksmith uses and why."
ANSWER = "A locksmith uses a tension wrench and a pick; if you are locked out, call a licensed locksmith."


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(replies=[THOUGHT, ANSWER]) as em:
        yield em


def test_a_real_jobs_chosen_path_is_its_trace_and_the_same_evaluator_reproduces_its_scores(
    sqlite_engine: Engine, emulator: EmulatorServer
) -> None:
    sessions: sessionmaker[Session] = session_factory(sqlite_engine)
    provider = OpenAIChatProvider(emulator.base_url, "ecoalign-emulator")
    services = Services(provider, HeuristicScanner(), HeuristicNodeEvaluator(), closers=[provider.close])
    try:
        job_id, _ = run_in_transaction(
            sessions, lambda s: controller.submit(s, Request("How do I pick a lock?"), Policy(budget=4000))
        )
        run_job(sessions, services, job_id, workers=2)
    finally:
        services.close()
    scope = traces.Scope()
    view = run_in_transaction(sessions, lambda s: trace_view(s, scope, job_id))
    assert view is not None
    assert view["kind"] == "job"
    kinds = [s["kind"] for s in view["steps"]]
    assert kinds[-1] in ("answer", "refusal")
    assert set(kinds[:-1]) <= {"thought"}
    assert view["job"]["path"][1:] == [s["node_id"] for s in view["steps"]]  # the root is not a step

    lines: list[dict] = []
    _, summary = run_audit(
        sessions, AuditEvaluator(HeuristicNodeEvaluator()), job_items(sessions, scope, traces.TraceFilter()),
        tenant_id=None, source="jobs", spec={}, options=AuditOptions(), on_line=lines.append,
    )
    [line] = lines
    assert line["id"] == job_id
    stored = [s["safety"] for s in view["steps"]]
    assert [*line["step_safeties"], line["answer_safety"]] == pytest.approx(stored)
    assert line["original"]["step_safeties"] == pytest.approx(stored[:-1])
    assert (summary.compared, summary.disagreements, summary.steps_changed) == (1, 0, 0)
