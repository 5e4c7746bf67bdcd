"""``POST /v1/chat/completions``: a drop-in OpenAI endpoint whose answer is the result of an EcoAlign job.

The request (OpenAI chat ``messages`` with text and ``image_url`` parts) becomes a job exactly like
``POST /v1/jobs`` (same validation, tenant budget check and ``Idempotency-Key`` semantics); the handler then
waits for the job and answers a ``chat.completion`` object:

* ``choices[0].message.content``: the chosen node's text (a refusal's text too, also in ``message.refusal``);
* ``finish_reason``: ``stop``; ``length`` when the chosen answer was cut at ``max_tokens``; ``content_filter``
  when the search refused;
* ``usage``: every token the search spent (all nodes' prompt and completion tokens, and evaluator tokens, which
  are counted as prompt tokens); ``total_tokens`` is exact;
* ``ecoalign``: decision, path safety, utility, reason, the billed tokens, and ``trace_id`` = the job id, so
  ``GET /v1/jobs/{id}/graph`` shows the whole search.

Where the job runs (``ECOALIGN_CHAT_MODE``): ``celery`` (default) hands it to the workers; ``inprocess`` runs it
on a thread pool of the API process (``runtime.inprocess.InProcessJobs``: single-host deployments without
workers). Either way the handler waits for the job's outcome (``runtime.waiting.await_outcome``), at most
``ECOALIGN_CHAT_TIMEOUT_S`` (then **504** with the job id: the job goes on and can be read at ``/v1/jobs/{id}``;
retrying with the same ``Idempotency-Key`` waits for the same job). The wait is ``async``: a waiting request
holds no thread. A job that gave no answer is a ``runtime.waiting.JobError``, answered by api/errors.py.

With ``stream: true`` the answer is Server-Sent Events (sse-starlette): comments only while the search runs
(keep-alives and ``ecoalign.progress``), then the chosen text as ``chat.completion.chunk`` deltas
(``runtime.completions.render_chunks``), ``[DONE]``; a client that leaves early cancels the job
(``runtime.streaming``). The framing is here (HTTP); what is read of the job is in ``ecoalign.runtime``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Header
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.auth import CurrentPrincipal
from api.context import AppContext, get_ctx
from api.errors import JobErrorOut, from_request_error
from api.routes.jobs import _401, _422, _503, dispatch_job, submit_for
from api.schemas import ErrorOut
from ecoalign.chat_schema import ChatCompletionCreate, parse_chat
from ecoalign.content import Request as AlignRequest
from ecoalign.engine.policy import Policy
from ecoalign.runtime.completions import render_chunks, render_completion
from ecoalign.runtime.requests import RequestError
from ecoalign.runtime.streaming import Progress, cancel_abandoned, read_progress
from ecoalign.runtime.waiting import JobOutcome, await_outcome, terminal_job
from ecoalign.settings import Settings
from ecoalign.store.db import run_in_transaction
from ecoalign.store.models import Job, JobStatus

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/chat", tags=["chat"])
Ctx = Annotated[AppContext, Depends(get_ctx)]


# -- request ----------------------------------------------------------------------------------------------------
def _parse(body: ChatCompletionCreate, settings: Settings, remote_fetch: Any) -> tuple[AlignRequest, Policy, str]:
    """``parse_chat`` with its ``RequestError`` as the API's 422 (``FieldError``) or 413 (``ApiError``)."""
    try:
        return parse_chat(body, settings, remote_fetch)
    except RequestError as exc:
        raise from_request_error(exc) from None


# -- response ---------------------------------------------------------------------------------------------------
class ChatMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None


class ChoiceOut(BaseModel):
    index: int
    message: ChatMessageOut
    finish_reason: Literal["stop", "length", "content_filter"]
    logprobs: None = None


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatExtension(BaseModel):
    """How the search decided; ``trace_id`` is the job id (``GET /v1/jobs/{id}/graph``)."""

    job_id: str
    trace_id: str
    decision: Literal["answered", "refused"] | None
    path_safety: float | None = None
    utility: float | None = None
    reason: str | None = None
    strategy: str
    path: list[str]
    billed_tokens: int = Field(description="tokens charged to the budgets (usage minus any recorded overrun)")
    model_calls: int
    models: list[str] = Field(description="the models that generated this job's nodes")


class ChatCompletionOut(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChoiceOut]
    usage: UsageOut
    system_fingerprint: str | None = None
    ecoalign: ChatExtension


# -- the endpoint -----------------------------------------------------------------------------------------------
@router.post(
    "/completions",
    response_model=ChatCompletionOut,
    summary="Create a chat completion: the aligned answer of an EcoAlign job (OpenAI-compatible)",
    operation_id="createChatCompletion",
    responses={
        200: {"description": "a chat.completion; with stream: true, Server-Sent Events of chat.completion.chunk "
                             "objects, then data: [DONE]",
              # One Server-Sent Event (what a client's SSE parser yields): its data is a chat.completion.chunk's
              # JSON, or [DONE]; comments (keep-alives, ecoalign.progress) are not events.
              "content": {"text/event-stream": {"schema": {
                  "type": "object",
                  "properties": {"data": {"type": "string"}, "event": {"type": "string"}, "id": {"type": "string"},
                                 "retry": {"type": "integer"}},
                  "required": ["data"],
              }}}},
        **_401,
        402: {"model": ErrorOut, "description": "the tenant's total token budget cannot cover a minimal job"},
        409: {"model": ErrorOut, "description": "Idempotency-Key reused with another body, or the job was cancelled"},
        413: {"model": ErrorOut, "description": "the body or one image is over the size limit"},
        **_422,
        # 429 (rate, concurrency, daily budget): api.auth.RATE_LIMITED, on every authenticated route
        502: {"model": JobErrorOut, "description": "the job failed (its reason and id)"},
        **_503,
        504: {
            "model": JobErrorOut,
            "description": "the job did not finish in time; it goes on (read it at /v1/jobs/{job_id})",
            "headers": {"X-Ecoalign-Job-Id": {"description": "the job's id", "schema": {"type": "string"}}},
        },
    },
)
async def create_chat_completion(
    body: ChatCompletionCreate,
    principal: CurrentPrincipal,
    ctx: Ctx,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", min_length=1, max_length=200,
               description="same key + same body → the same job (a retry after a 504 waits for it)"),
    ] = None,
) -> Any:
    settings = ctx.settings
    request, policy, strategy = await run_in_threadpool(_parse, body, settings, ctx.remote_fetch)
    view, created = await run_in_threadpool(
        run_in_transaction,
        ctx.sessions,
        lambda s: submit_for(s, request, policy, strategy, principal, idempotency_key),
    )
    job_id = view["id"]
    if not JobStatus(view["status"]).terminal:
        if settings.chat_mode == "inprocess":
            await run_in_threadpool(ctx.inprocess_jobs.start, job_id)
        elif created:
            await run_in_threadpool(dispatch_job, ctx, job_id)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return EventSourceResponse(stream_job(ctx, job_id, body.model, include_usage),
                                   ping=settings.chat_stream_keepalive_s, headers={"X-Ecoalign-Job-Id": job_id})
    job = (await wait_for_job(ctx, job_id, settings.chat_timeout_s, settings.chat_poll_s)).answer()
    return await run_in_threadpool(run_in_transaction, ctx.sessions, lambda s: render_completion(s, job, body.model))


async def wait_for_job(ctx: AppContext, job_id: str, timeout_s: float, poll_s: float) -> JobOutcome:
    """The job's outcome once it is terminal, or a timed-out outcome after ``timeout_s``."""

    async def read_terminal() -> Job | None:
        return await run_in_threadpool(run_in_transaction, ctx.sessions, lambda s: terminal_job(s, job_id))

    return await await_outcome(read_terminal, job_id, timeout_s=timeout_s, poll_s=poll_s, sleep=asyncio.sleep)


# -- streaming (stream: true) ----------------------------------------------------------------------------------
PROGRESS = "ecoalign.progress"  # an SSE comment (": ecoalign.progress {...}"): every SSE client skips comments


def _data(obj: Any) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps(obj, separators=(",", ":")))


async def stream_job(ctx: AppContext, job_id: str, model: str, include_usage: bool) -> AsyncIterator[ServerSentEvent]:
    """The SSE body of a streaming completion: progress comments while the search runs (no text: nothing has been
    chosen yet), then the chosen answer as ``chat.completion.chunk`` deltas and ``[DONE]``; a job that gave no
    answer is one ``{"error": ...}`` event (the OpenAI SDK raises it). A client that leaves before the end cancels
    the job (its reservations are released)."""
    settings = ctx.settings
    ended = False
    try:
        deadline = time.monotonic() + settings.chat_timeout_s
        progress = await _next_progress(ctx, job_id, deadline, settings.chat_poll_s)
        while not isinstance(progress, JobOutcome):
            yield ServerSentEvent(comment=f"{PROGRESS} {json.dumps(progress.as_event(), separators=(',', ':'))}")
            progress = await _next_progress(ctx, job_id, deadline, settings.chat_poll_s, progress)
        error = progress.error()
        if error is not None:
            ended = True  # a failed job is over; a timed-out one goes on (read it at /v1/jobs/{id})
            yield _data({"error": {"message": error.detail, "type": error.code, "code": error.code,
                                   "job_id": job_id}})
            return
        job = progress.answer()
        completion = await run_in_threadpool(run_in_transaction, ctx.sessions,
                                             lambda s: render_completion(s, job, model))
        ended = True
        for chunk in render_chunks(completion, include_usage=include_usage):
            yield _data(chunk)
        yield ServerSentEvent(data="[DONE]")
    finally:
        if not ended:
            with anyio.CancelScope(shield=True):
                cancelled = await run_in_threadpool(run_in_transaction, ctx.sessions,
                                                    lambda s: cancel_abandoned(s, job_id))
            log.info("streaming client of job %s went away; job cancelled: %s", job_id, cancelled)


async def _next_progress(ctx: AppContext, job_id: str, deadline: float, poll_s: float,
                         last: Progress | None = None) -> Progress | JobOutcome:
    """The job's outcome once terminal (or past ``deadline``); before that, the next progress unlike ``last``."""
    while True:
        progress = await run_in_threadpool(run_in_transaction, ctx.sessions, lambda s: read_progress(s, job_id))
        if progress.job is not None or time.monotonic() >= deadline:
            return JobOutcome(job_id, progress.job, ctx.settings.chat_timeout_s)
        if last is None or progress.as_event() != last.as_event():
            return progress
        await asyncio.sleep(poll_s)
