"""The Celery task bodies export a finished job's spans once, even when every message is delivered twice."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ecoalign.runtime.report import full_report
from ecoalign.store.db import run_in_transaction
from ecoalign.telemetry import JobSpans, trace_id_of
from tests.workers.test_tasks import Rig, rig  # noqa: F401 - the fixture
from workers import process

pytestmark = pytest.mark.postgres


def test_duplicated_messages_export_the_trace_once(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    exporter = InMemorySpanExporter()
    spans = JobSpans(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(process.root(), "job_spans", lambda: spans)
    job_id = rig.submit("How do volcanoes form?", strategy="best_of_n")
    rig.run("advance", job_id)
    rig.drain(duplicate=True)
    report = run_in_transaction(rig.factory, lambda s: full_report(s, job_id))
    assert report["status"] == "succeeded"
    finished = exporter.get_finished_spans()
    assert [s.name for s in finished].count("invoke_agent ecoalign") == 1
    assert len(finished) == 1 + len(report["graph"]["nodes"])
    assert {s.context.trace_id for s in finished} == {trace_id_of(job_id)}
