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

Where the job runs (``ECOALIGN_CHAT_MODE``): ``celery`` (default) hands it to the workers and polls the database
until it is terminal, at most ``ECOALIGN_CHAT_TIMEOUT_S`` (then **504** with the job id: the job goes on and can be
read at ``/v1/jobs/{id}``; retrying with the same ``Idempotency-Key`` waits for the same job); ``inprocess`` runs it
on a thread pool of the API process (single-host deployments without workers), with the same bounded wait.
The wait is ``async``: a waiting request holds no thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Depends, FastAPI, Header
from fastapi import Request as HttpRequest
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.auth import CurrentPrincipal
from api.context import AppContext, get_ctx
from api.errors import ApiError, from_request_error
from api.routes.jobs import _401, _422, _503, dispatch_job, submit_for
from api.schemas import ErrorOut
from ecoalign.chat_schema import ChatCompletionCreate, parse_chat
from ecoalign.content import Request as AlignRequest
from ecoalign.engine.policy import Policy
from ecoalign.runtime.completions import job_error, render_completion
from ecoalign.runtime.requests import RequestError
from ecoalign.settings import Settings
from ecoalign.store import repository
from ecoalign.store.db import run_in_transaction
from ecoalign.store.models import Job, JobStatus

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/chat", tags=["chat"])
Ctx = Annotated[AppContext, Depends(get_ctx)]
TERMINAL = frozenset({JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value})


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


class JobErrorOut(ErrorOut):
    """An error about a job that exists: its id, to read it later at ``/v1/jobs/{id}``."""

    job_id: str


def _job_error_response(status: int, code: str, detail: str, job_id: str) -> JSONResponse:
    body = JobErrorOut(detail=detail, code=code, job_id=job_id)
    return JSONResponse(status_code=status, content=body.model_dump(mode="json"), headers={"X-Ecoalign-Job-Id": job_id})


# -- in-process execution ---------------------------------------------------------------------------------------
_LOCK = threading.Lock()


def _inprocess_pool(app: FastAPI, settings: Settings) -> tuple[ThreadPoolExecutor, Any]:
    """The API process's job pool and adapters (``ECOALIGN_CHAT_MODE=inprocess``), built on first use."""
    with _LOCK:
        found = getattr(app.state, "chat_inprocess", None)
        if found is None:
            from ecoalign.runtime.factory import build_services

            services = build_services(settings)
            pool = ThreadPoolExecutor(max(2, settings.model_concurrency // 2), thread_name_prefix="ecoalign-chat")
            found = (pool, services)
            app.state.chat_inprocess = found
    return cast(tuple[ThreadPoolExecutor, Any], found)


def _run_inprocess(app: FastAPI, ctx: AppContext, job_id: str) -> None:
    """Run the job on the API's pool, unless this process already runs it (a retry with the same key)."""
    from ecoalign.runtime.factory import ServiceError
    from ecoalign.runtime.inprocess import run_job

    try:
        pool, services = _inprocess_pool(app, ctx.settings)
    except ServiceError as exc:
        raise ApiError(
            503, "model_unavailable", f"the model is unavailable: {exc}", headers={"Retry-After": "5"}
        ) from None
    with _LOCK:
        running: set[str] | None = getattr(app.state, "chat_running", None)
        if running is None:
            running = app.state.chat_running = set()
        if job_id in running:
            return
        running.add(job_id)

    def run() -> None:
        try:
            run_job(ctx.sessions, services, job_id, lease_s=ctx.settings.node_lease_s)
        except Exception:
            log.exception("in-process chat job %s did not finish; the reaper or a retry will pick it up", job_id)
        finally:
            with _LOCK:
                running.discard(job_id)

    pool.submit(run)


# -- the endpoint -----------------------------------------------------------------------------------------------
@router.post(
    "/completions",
    response_model=ChatCompletionOut,
    summary="Create a chat completion: the aligned answer of an EcoAlign job (OpenAI-compatible)",
    operation_id="createChatCompletion",
    responses={
        **_401,
        402: {"model": ErrorOut, "description": "the tenant's total token budget cannot cover a minimal job"},
        409: {"model": ErrorOut, "description": "Idempotency-Key reused with another body, or the job was cancelled"},
        413: {"model": ErrorOut, "description": "the body or one image is over the size limit"},
        **_422,
        429: {
            "model": ErrorOut,
            "description": "the tenant's daily token budget is used up",
            "headers": {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}},
        },
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
    http: HttpRequest,
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
    if view["status"] not in TERMINAL:
        if settings.chat_mode == "inprocess":
            _run_inprocess(http.app, ctx, job_id)
        elif created:
            await run_in_threadpool(dispatch_job, ctx, job_id)
    job = await wait_for_job(ctx, job_id, settings.chat_timeout_s, settings.chat_poll_s)
    if job is None:
        return _job_error_response(
            504, "timeout",
            f"job {job_id} did not finish within {settings.chat_timeout_s:g} s; it goes on: GET /v1/jobs/{job_id}",
            job_id,
        )
    if job.status != JobStatus.SUCCEEDED.value:
        status, code, detail = job_error(job)
        return _job_error_response(status, code, detail, job_id)
    return await run_in_threadpool(run_in_transaction, ctx.sessions, lambda s: render_completion(s, job, body.model))


async def wait_for_job(ctx: AppContext, job_id: str, timeout_s: float, poll_s: float) -> Job | None:
    """Poll the job row until it is terminal (the job), or ``None`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    delay = min(poll_s, 0.05)
    while True:
        job = await run_in_threadpool(run_in_transaction, ctx.sessions, lambda s: repository.get_job(s, job_id))
        if job is not None and job.status in TERMINAL:
            return job
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        await asyncio.sleep(min(delay, left))
        delay = min(delay * 2, poll_s)
