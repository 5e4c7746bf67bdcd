"""OTLP export of a finished job and its nodes as OpenTelemetry spans (off unless ``ECOALIGN_OTLP_ENDPOINT`` is set).

Why spans are built from the stored trace, once the job has ended, and not around the live calls: a job's nodes
run in many worker processes (and are retried, redelivered, leased), but the store has every node's start and end
times, its model call's ``gen_ai.*`` attributes and its scores. Whichever process sees the job end exports the
whole trace, with ids derived from the job and node ids (sha256), so an export repeated after a redelivery carries
the same ids and a backend sees one trace, not two.

Shape (OpenTelemetry GenAI semantic conventions where they have a name): one ``invoke_agent ecoalign`` span for
the job (``gen_ai.operation.name=invoke_agent``, ``gen_ai.agent.name=ecoalign``, the job's summed
``gen_ai.usage.*``), and one child span per node: ``chat {model}`` (kind CLIENT) with the node's recorded
``gen_ai.request.model``, ``gen_ai.usage.input_tokens`` ... for a model call, ``ecoalign.scan`` for the root's
scan; ``ecoalign.*`` attributes carry the scores, status and prune reason, and links point at the node's graph
parents. opentelemetry-sdk is the ``otel`` extra: it is imported only when export is on.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ecoalign import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

log = logging.getLogger(__name__)
SERVICE_NAME = "ecoalign"


def _id(text: str, bits: int) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[: bits // 4], 16) or 1


def trace_id_of(job_id: str) -> int:
    return _id(f"trace:{job_id}", 128)


def span_id_of(key: str) -> int:
    return _id(f"span:{key}", 64)


def _ns(value: str | None, fallback: int) -> int:
    if not value:
        return fallback
    return int(datetime.fromisoformat(value).timestamp() * 1e9)


def _attributes(values: Mapping[str, Any]) -> dict[str, Any]:
    """OpenTelemetry takes str, bool, int, float and lists of them; drop None, stringify the rest."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, str | bool | int | float):
            out[key] = value
        elif isinstance(value, list | tuple) and all(isinstance(v, str | bool | int | float) for v in value):
            out[key] = list(value)
        else:
            out[key] = str(value)
    return out


class JobSpans:
    """Turns a job report (``runtime.report.full_report``) into spans and hands them to a span processor."""

    def __init__(self, processor: SpanProcessor, *, service_name: str = SERVICE_NAME) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        self.processor = processor
        self.resource = Resource.create({"service.name": service_name, "service.version": __version__})
        self.scope = InstrumentationScope("ecoalign", __version__)

    def spans(self, report: Mapping[str, Any]) -> list[ReadableSpan]:
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

        job_id = report["id"]
        trace_id = trace_id_of(job_id)

        def context(key: str) -> SpanContext:
            return SpanContext(trace_id, span_id_of(key), is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))

        graph = report.get("graph") or {}
        totals = graph.get("gen_ai") or {}
        job_start = _ns(report.get("started_at") or report.get("created_at"), 0)
        job_end = _ns(report.get("finished_at"), job_start)
        job_ctx = context(f"job:{job_id}")
        failed = report.get("status") == "failed"
        job = ReadableSpan(
            name="invoke_agent ecoalign",
            context=job_ctx,
            resource=self.resource,
            instrumentation_scope=self.scope,
            kind=SpanKind.INTERNAL,
            start_time=job_start,
            end_time=job_end,
            status=Status(StatusCode.ERROR, report.get("failure_reason") or "") if failed else Status(StatusCode.OK),
            attributes=_attributes({
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "ecoalign",
                "gen_ai.request.model": totals.get("gen_ai.request.model"),
                "gen_ai.usage.input_tokens": totals.get("gen_ai.usage.input_tokens"),
                "gen_ai.usage.output_tokens": totals.get("gen_ai.usage.output_tokens"),
                "ecoalign.job.id": job_id,
                "ecoalign.job.status": report.get("status"),
                "ecoalign.job.strategy": report.get("strategy"),
                "ecoalign.job.decision": report.get("decision"),
                "ecoalign.job.path_safety": report.get("path_safety"),
                "ecoalign.job.utility": report.get("utility"),
                "ecoalign.job.total_tokens": (report.get("cost") or {}).get("total_tokens"),
                "ecoalign.job.reason": report.get("reason"),
            }),
        )
        out = [job]
        for node in graph.get("nodes") or []:
            out.append(self._node_span(node, job_ctx, context, job_start, job_end))
        return out

    def _node_span(self, node: Mapping[str, Any], parent: Any, context: Any, job_start: int, job_end: int) -> Any:
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.trace import Link, SpanKind, Status, StatusCode

        gen_ai = dict(node.get("gen_ai") or {})
        model = gen_ai.get("gen_ai.request.model") or node.get("model") or ""
        if gen_ai:
            name, kind = f"chat {model}".strip(), SpanKind.CLIENT
        else:
            name, kind = ("ecoalign.scan" if node["kind"] == "root" else f"ecoalign.{node['kind']}"), SpanKind.INTERNAL
        start = _ns(node.get("started_at"), job_start)
        status = Status(StatusCode.ERROR, node.get("failure_reason") or "") if node["status"] == "failed" else Status(
            StatusCode.UNSET
        )
        return ReadableSpan(
            name=name,
            context=context(f"node:{node['id']}"),
            parent=parent,
            resource=self.resource,
            instrumentation_scope=self.scope,
            kind=kind,
            start_time=start,
            end_time=max(start, _ns(node.get("finished_at"), job_end)),
            status=status,
            links=[Link(context(f"node:{p}")) for p in node.get("parents") or []],
            attributes=_attributes({
                **gen_ai,
                "ecoalign.node.id": node["id"],
                "ecoalign.node.kind": node["kind"],
                "ecoalign.node.status": node["status"],
                "ecoalign.node.depth": node.get("depth"),
                "ecoalign.node.safety": node.get("safety"),
                "ecoalign.node.utility": node.get("utility"),
                "ecoalign.node.tokens": node.get("tokens"),
                "ecoalign.node.evaluator": node.get("evaluator") or None,
                "ecoalign.node.prune_reason": node.get("prune_reason"),
            }),
        )

    def export(self, report: Mapping[str, Any]) -> None:
        for span in self.spans(report):
            self.processor.on_end(span)

    def shutdown(self) -> None:
        self.processor.shutdown()


def otlp_job_spans(endpoint: str, *, service_name: str = SERVICE_NAME) -> JobSpans:
    """Spans batched to an OTLP/HTTP collector at ``endpoint`` (e.g. ``http://collector:4318/v1/traces``)."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:  # the otel extra is not installed
        raise RuntimeError(
            f"ECOALIGN_OTLP_ENDPOINT is set but opentelemetry is not installed ({exc}); pip install 'ecoalign[otel]'"
        ) from None
    return JobSpans(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)), service_name=service_name)
