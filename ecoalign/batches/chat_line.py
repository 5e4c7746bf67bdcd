"""A ``/v1/chat/completions`` line: an EcoAlign job run **in-process inside the line's task** (the same steps as the
Celery pipeline, on a small thread pool), answered as a ``chat.completion``.

The job is created with the idempotency key ``batch-line:<item id>``, so a redelivered line resumes the same job
instead of starting another. If the job cannot be advanced here (a node still leased by a dead attempt), the line
waits for it (the workers' reaper hands such nodes to the Celery pipeline) up to the task's time budget. Its
tokens are charged through the job ledger like any job's.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ecoalign.batches.claim import Claimed
from ecoalign.batches.outcome import LineOutcome, answered, header_of, line_error
from ecoalign.batches.runtime import BatchRuntime

CHAT = "/v1/chat/completions"


def _request_error(claimed: Claimed, obj: dict[str, Any]) -> LineOutcome | None:
    """The error of a line that is not a ``POST /v1/chat/completions`` with an object body, or None."""
    if obj.get("method", "POST") != "POST":
        return line_error(claimed, "invalid_method", f"method must be POST, got {obj.get('method')!r}")
    if obj.get("url") != CHAT:
        return line_error(claimed, "invalid_url", f"url must be {CHAT}, got {obj.get('url')!r}")
    if not isinstance(obj.get("body"), dict):
        return line_error(claimed, "invalid_body", "body must be an object")
    if obj["body"].get("stream"):
        return line_error(claimed, "invalid_request", "body.stream: a batch line cannot stream; leave it unset")
    return None


def _parse_body(rt: BatchRuntime, claimed: Claimed, raw_body: dict[str, Any]) -> tuple[Any, ...] | LineOutcome:
    """``(body, request, policy, strategy)`` of the line, or its error as the API's 413 / 422 would name it."""
    from ecoalign.chat_schema import ChatCompletionCreate, parse_chat
    from ecoalign.runtime.requests import RequestError, field_loc

    try:
        body = ChatCompletionCreate.model_validate(raw_body)
        return (body, *parse_chat(body, rt.settings, rt.remote_fetch))
    except ValidationError as exc:
        issues = "; ".join(f"body.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        return line_error(claimed, "invalid_request", issues)
    except RequestError as exc:  # as the API's 413 / 422: the code, or the field's location and the message
        if exc.too_large:
            return line_error(claimed, "payload_too_large", str(exc))
        return line_error(claimed, "invalid_request", f"{'.'.join(map(str, field_loc(exc.field)))}: {exc}")


def _submit(rt: BatchRuntime, claimed: Claimed, request: Any, policy: Any, strategy: Any) -> str | LineOutcome:
    """The line's job (``batch-line:<item id>``: a redelivered line finds the same one), or why it has none."""
    from ecoalign.runtime import submission
    from ecoalign.store.db import run_in_transaction

    tenant_id, key = claimed.tenant_id or "", f"batch-line:{claimed.item_id}"
    try:
        view, _ = run_in_transaction(
            rt.factory, lambda s: submission.submit_tenant_job(s, request, policy, strategy, tenant_id, key)
        )
    except submission.TenantBudgetExhausted as exc:  # the tenant's budget cannot pay for a minimal job
        return line_error(claimed, exc.code, exc.message)
    except submission.IdempotencyConflict as exc:
        return line_error(claimed, "idempotency_conflict", str(exc))
    return str(view["id"])


def chat_line(rt: BatchRuntime, claimed: Claimed, raw: bytes, *, wait_s: float) -> LineOutcome:
    """Run the line's job and answer it as ``POST /v1/chat/completions`` would."""
    from ecoalign.runtime.completions import render_completion
    from ecoalign.runtime.waiting import JobTimedOut, run_and_wait
    from ecoalign.store.db import run_in_transaction

    header = header_of(rt, claimed, raw)
    if isinstance(header, LineOutcome):
        return header
    refused = _request_error(claimed, header.obj)
    if refused is not None:
        return refused
    parsed = _parse_body(rt, claimed, header.obj["body"])
    if isinstance(parsed, LineOutcome):
        return parsed
    body, *job_request = parsed
    job_id = _submit(rt, claimed, *job_request)
    if isinstance(job_id, LineOutcome):
        return job_id
    outcome = run_and_wait(rt.factory, rt.services(), job_id, timeout_s=wait_s, workers=rt.chat_workers,
                           lease_s=rt.settings.node_lease_s)
    error = outcome.error()
    if isinstance(error, JobTimedOut):  # the task fails and is retried: the job goes on and a later attempt finds it
        raise TimeoutError(f"job {job_id} of batch line {claimed.item_id} did not finish in {wait_s:g} s")
    if error is not None:
        return line_error(claimed, error.code, error.detail, job_id=job_id)
    job = outcome.answer()
    completion = run_in_transaction(rt.factory, lambda s: render_completion(s, job, body.model))
    return answered(completion, int(completion["usage"]["total_tokens"]))
