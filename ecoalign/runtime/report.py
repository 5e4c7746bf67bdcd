"""The job as users see it: result, cost, budget and the whole graph, in one JSON-ready dict."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ecoalign.engine.graph import NodeStatus, ThoughtGraph
from ecoalign.engine.metrics import path_metrics
from ecoalign.engine.pareto import pareto_front
from ecoalign.store import reads, repository
from ecoalign.store.models import Job, NodeRow


def iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def node_view(row: NodeRow, parents: list[str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "action": row.action,
        "parents": parents,
        "depth": row.depth,
        "status": row.status,
        "safety": row.safety,
        "utility": row.utility,
        "categories": {k: v for k, v in (row.categories or {}).items() if v},
        "tokens": row.tokens,
        "tokens_prompt": row.tokens_prompt,
        "tokens_completion": row.tokens_completion,
        "tokens_eval": row.tokens_eval,
        "est_tokens": row.est_tokens,
        "text": row.text,
        "model": row.model,
        "evaluator": row.evaluator,
        "prune_reason": row.prune_reason,
        "failure_reason": row.failure_reason,
        "reason": row.reason,
        "attempts": row.attempts,
        "gen_ai": row.gen_ai,
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
    }


def paths_view(graph: ThoughtGraph) -> list[dict[str, Any]]:
    """Every complete path (root to a scored answer or refusal, kept or pruned) with S (weakest link), U and C,
    and whether it is on the Pareto front of S↑ U↑ C↓ (what the trace viewer plots)."""
    settled = (NodeStatus.DONE, NodeStatus.PRUNED)
    ends = [n.id for n in graph.terminals() if n.status in settled and n.safety is not None]
    metrics = [path_metrics(graph, node_id) for node_id in ends]
    front = {m.node_id for m in pareto_front(metrics)}
    return [
        {
            "node_id": m.node_id,
            "kind": graph[m.node_id].kind.value,
            "status": graph[m.node_id].status.value,
            "path": list(m.path),
            "safety": m.safety,
            "utility": m.utility,
            "cost": m.cost,
            "pareto": m.node_id in front,
        }
        for m in metrics
    ]


def gen_ai_totals(rows: list[NodeRow]) -> dict[str, Any]:
    """The job's model calls summed under the OpenTelemetry GenAI attribute names (from each node's ``gen_ai``)."""
    calls = [row.gen_ai for row in rows if row.gen_ai]
    models = sorted({str(c.get("gen_ai.request.model")) for c in calls if c.get("gen_ai.request.model")})
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": models[0] if len(models) == 1 else None,
        "gen_ai.usage.input_tokens": sum(int(c.get("gen_ai.usage.input_tokens") or 0) for c in calls),
        "gen_ai.usage.output_tokens": sum(int(c.get("gen_ai.usage.output_tokens") or 0) for c in calls),
        "ecoalign.model_calls": len(calls),
    }


def graph_view(session: Session, job_id: str) -> dict[str, Any]:
    rows = repository.load_nodes(session, job_id)
    graph = reads.load_graph(session, job_id)
    nodes = [node_view(r, list(graph[r.id].parents)) for r in rows]
    edges = [{"parent": p, "child": c} for p, c in graph.edges()]
    return {"nodes": nodes, "edges": edges, "paths": paths_view(graph), "gen_ai": gen_ai_totals(rows)}


def job_view(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "job_id": job.id,
        "status": job.status,
        "decision": job.decision,
        "response": job.response,
        "reason": job.reason,
        "strategy": job.strategy,
        "path": job.path or [],
        "path_safety": job.path_safety,
        "utility": job.utility,
        "cost": {"total_tokens": job.budget_spent, "model_calls": job.model_calls},
        "budget": {"total": job.budget_total, "spent": job.budget_spent, "reserved": job.budget_reserved},
        "scan": job.scan,
        "failure_reason": job.failure_reason,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
    }


def full_report(session: Session, job_id: str) -> dict[str, Any]:
    job = repository.get_job(session, job_id)
    if job is None:
        raise repository.NotFound(f"no job {job_id}")
    return {**job_view(job), "graph": graph_view(session, job_id)}
