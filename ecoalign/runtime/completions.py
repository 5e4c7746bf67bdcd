"""A finished job as an OpenAI ``chat.completion`` body: shared by ``POST /v1/chat/completions`` (api/routes/chat.py)
and the Batch API's chat lines (ecoalign/batches/chat_line.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ecoalign.store import repository
from ecoalign.store.models import Job


def render_completion(session: Session, job: Job, model: str) -> dict[str, Any]:
    """A ``chat.completion`` body for a succeeded job (usage summed over every node of its graph)."""
    nodes = repository.load_nodes(session, job.id)
    prompt = sum(n.tokens_prompt + n.tokens_eval for n in nodes)
    completion = sum(n.tokens_completion for n in nodes)
    refused = job.decision == "refused"
    finish = "content_filter" if refused else "stop"
    chosen = next((n for n in nodes if job.path and n.id == job.path[-1]), None)
    reasons = ((chosen.gen_ai or {}).get("gen_ai.response.finish_reasons") or []) if chosen is not None else []
    if not refused and "length" in reasons:
        finish = "length"
    return {
        "id": f"chatcmpl-{job.id}",
        "object": "chat.completion",
        "created": int(job.created_at.timestamp()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": job.response, "refusal": job.response if refused else None},
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        "system_fingerprint": None,
        "ecoalign": {
            "job_id": job.id,
            "trace_id": job.id,
            "decision": job.decision,
            "path_safety": job.path_safety,
            "utility": job.utility,
            "reason": job.reason,
            "strategy": job.strategy,
            "path": list(job.path or []),
            "billed_tokens": job.budget_spent,
            "model_calls": job.model_calls,
            "models": sorted({n.model for n in nodes if n.model and n.model != "template"}),
        },
    }
