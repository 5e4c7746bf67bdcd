"""OTLP export of job and node spans, checked with the SDK's in-memory exporter on a real in-process job."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from ecoalign.content import Request
from ecoalign.engine.policy import Policy
from ecoalign.runtime import controller
from ecoalign.runtime.inprocess import run_job
from ecoalign.runtime.report import full_report
from ecoalign.runtime.root import Root
from ecoalign.settings import Settings
from ecoalign.store.db import run_in_transaction
from ecoalign.telemetry import JobSpans, span_id_of, trace_id_of
from ecoalign.testing.emulator import EmulatorServer
from tests.runtime.test_inprocess import services_for


@pytest.fixture(scope="module")
def emulator():
    with EmulatorServer(replies=["Keep a regular schedule.", "Sleep more."]) as em:
        yield em


def test_a_finished_job_exports_one_job_span_and_one_span_per_node(db, emulator):
    exporter = InMemorySpanExporter()
    spans = JobSpans(SimpleSpanProcessor(exporter))
    request = Request("How can I sleep better?")
    job_id, _ = run_in_transaction(
        db, lambda s: controller.submit(s, request, Policy(budget=6000), strategy="best_of_n")
    )
    assert run_job(db, services_for(emulator.base_url), job_id, spans=spans) == "succeeded"
    report = run_in_transaction(db, lambda s: full_report(s, job_id))
    finished = exporter.get_finished_spans()
    assert len(finished) == 1 + len(report["graph"]["nodes"])

    job = next(s for s in finished if s.name == "invoke_agent ecoalign")
    assert job.context.trace_id == trace_id_of(job_id)
    assert job.parent is None
    assert job.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert job.attributes["ecoalign.job.decision"] == report["decision"]
    calls = [s for s in finished if s.kind is SpanKind.CLIENT]
    assert calls
    assert len(calls) == len([n for n in report["graph"]["nodes"] if n["gen_ai"]])
    assert job.attributes["gen_ai.usage.input_tokens"] == sum(s.attributes["gen_ai.usage.input_tokens"] for s in calls)
    for span in calls:
        assert span.name == "chat ecoalign-emulator"
        assert span.parent.span_id == job.context.span_id
        assert span.context.trace_id == job.context.trace_id
        assert span.attributes["gen_ai.request.model"] == "ecoalign-emulator"
        assert span.attributes["gen_ai.operation.name"] == "chat"
        assert span.attributes["gen_ai.usage.output_tokens"] > 0
        assert span.start_time <= span.end_time
        root_id = report["path"][0]
        assert [link.context.span_id for link in span.links] == [span_id_of(f"node:{root_id}")]
    assert any(s.name == "ecoalign.scan" for s in finished)

    # a driver that finds the job already over (a redelivery) exports nothing more
    assert run_job(db, services_for(emulator.base_url), job_id, spans=spans) == "succeeded"
    assert len(exporter.get_finished_spans()) == len(finished)


def test_export_is_off_by_default_and_on_with_an_endpoint(tmp_path):
    off = Root(Settings(db_url=f"sqlite:///{tmp_path / 'a.db'}"))
    assert off.job_spans() is None
    on = Root(Settings(db_url=f"sqlite:///{tmp_path / 'b.db'}", otlp_endpoint="http://127.0.0.1:9/v1/traces"))
    spans = on.job_spans()
    assert isinstance(spans, JobSpans)
    assert isinstance(spans.processor, BatchSpanProcessor)
    assert on.job_spans() is spans  # built once
    on.close()
    off.close()
