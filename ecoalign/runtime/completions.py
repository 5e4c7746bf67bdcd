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


DELTA_CHARS = 24  # about one chunk per few words: what a client renders as the answer arrives


def split_deltas(text: str, size: int = DELTA_CHARS) -> list[str]:
    """The answer in pieces of about ``size`` characters, cut after a space where there is one (joined: the text)."""
    pieces: list[str] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            space = text.rfind(" ", start + 1, end + 1)
            end = space + 1 if space > start else end
        pieces.append(text[start:end])
        start = end
    return pieces


def render_chunks(completion: dict[str, Any], *, include_usage: bool) -> list[dict[str, Any]]:
    """A ``chat.completion`` body (``render_completion``) as OpenAI's ``chat.completion.chunk`` sequence: the role,
    the content in deltas, the finish reason, then (``include_usage``) a last chunk with no choices and the usage.
    Only the chosen answer's text is in them: the search had ended before any of them was made."""
    choice = completion["choices"][0]
    base = {"id": completion["id"], "object": "chat.completion.chunk", "created": completion["created"],
            "model": completion["model"], "system_fingerprint": None}

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
                **extra}

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": piece}) for piece in split_deltas(choice["message"]["content"] or "")]
    chunks.append(chunk({}, choice["finish_reason"], ecoalign=completion["ecoalign"]))
    if include_usage:
        chunks.append({**base, "choices": [], "usage": completion["usage"]})
    return chunks
