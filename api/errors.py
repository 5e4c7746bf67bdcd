"""One error format for the whole API, and the mapping from domain errors to HTTP statuses.

* 422 always has the body ``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}`` whether pydantic, the request
  parser (``RequestError``) or the engine's ``PolicyError`` found the problem; the request body is never echoed
  back (it may hold megabytes of images).
* Every other error is ``{"detail": "...", "code": "...", "loc": [...] | null}``; an error about a job that exists
  (``runtime.waiting.JobError``) also names it: ``job_id`` in the body and the ``X-Ecoalign-Job-Id`` header.
* Domain errors of the runtime are mapped to HTTP here and nowhere else (``install``): the tenant's budgets
  (402, 429), an ``Idempotency-Key`` reused with another body (409), a model that cannot be built (503), and a
  job that gave no answer (cancelled 409, failed 502, not done in time 504); a tenant's rate or concurrency
  limit (429 with ``Retry-After``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from api.schemas import ErrorOut, ValidationErrorOut
from ecoalign.audit.evaluators import AuditSetupError
from ecoalign.audit.service import TooManyTraces
from ecoalign.audit.traces import TraceFilterError
from ecoalign.batches import errors as batch_errors
from ecoalign.engine.policy import PolicyError
from ecoalign.moderation.inputs import InputError
from ecoalign.policies.service import PolicyNotFound, UnknownPolicyChoice, UnknownPolicyCursor
from ecoalign.quotas import LimitExceeded
from ecoalign.reviews import errors as review_errors
from ecoalign.runtime.factory import ServiceError
from ecoalign.runtime.requests import RequestError, field_loc
from ecoalign.runtime.submission import IdempotencyConflict, TenantBudgetExhausted
from ecoalign.runtime.waiting import JobCancelled, JobError, JobFailed, JobTimedOut
from ecoalign.webhooks.endpoints import EndpointNotFound, TooManyEndpoints, WebhookInputError

log = logging.getLogger(__name__)

_POLICY_FIELD = re.compile(r"policy\.(\w+)")


class ApiError(Exception):
    """An error with its HTTP status and stable code; raised by handlers, rendered as ``ErrorOut``."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        loc: Sequence[str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.loc = list(loc) if loc is not None else None
        self.headers = dict(headers or {})


class JobErrorOut(ErrorOut):
    """An error about a job that exists: its id, to read it later at ``/v1/jobs/{id}``."""

    job_id: str


def not_found(what: str = "job") -> ApiError:
    # Same answer for "does not exist" and "belongs to another tenant": ids are not disclosed.
    return ApiError(404, "not_found", f"no such {what}")


def validation_response(issues: list[dict[str, Any]]) -> JSONResponse:
    body = ValidationErrorOut.model_validate({"detail": issues})
    return JSONResponse(status_code=422, content=body.model_dump(mode="json"))


class FieldError(Exception):
    """A 422 found after pydantic: one field of an otherwise well-formed body is unusable."""

    def __init__(self, loc: Sequence[str | int], msg: str) -> None:
        super().__init__(msg)
        self.loc = list(loc)
        self.msg = msg


def from_request_error(exc: RequestError) -> ApiError | FieldError:
    """Too large → 413 (the client must shrink it); anything else → 422 naming the field."""
    if exc.too_large:
        return ApiError(413, "payload_too_large", str(exc), loc=field_loc(exc.field))
    return FieldError(field_loc(exc.field), str(exc))


def from_policy_error(exc: PolicyError | TypeError) -> FieldError:
    match = _POLICY_FIELD.search(str(exc))
    return FieldError(["body", "policy"] + ([match.group(1)] if match else []), str(exc))


def from_batch_error(exc: batch_errors.BatchError) -> ApiError | FieldError:
    """The Batch API's domain errors: missing → 404, a finished batch → 409, an unusable field → 422."""
    if isinstance(exc, batch_errors.NotFound):
        return not_found(exc.what)
    if isinstance(exc, batch_errors.NotABatchInput):
        return FieldError(["body", "input_file_id"], str(exc))
    if isinstance(exc, batch_errors.UnknownCursor):
        return FieldError(["query", "after"], str(exc))
    if isinstance(exc, batch_errors.BatchFinished):
        return ApiError(409, exc.code, str(exc))
    return ApiError(500, "internal_error", "internal error; the request was logged")


def from_trace_filter_error(exc: TraceFilterError, where: str = "query") -> FieldError:
    """A trace filter that cannot apply → 422 naming it (a query parameter, or a field of ``body.jobs``)."""
    return FieldError([*where.split("."), exc.field], str(exc))


def from_audit_error(exc: AuditSetupError | TooManyTraces) -> FieldError:
    """An audit's evaluator that cannot be built (a judge the server has no URL for), or too many traces → 422."""
    if isinstance(exc, TooManyTraces):
        return FieldError(["body", exc.field], str(exc))
    return FieldError(["body", "evaluator"], str(exc))


def error_json(exc: ApiError) -> JSONResponse:
    body = ErrorOut(detail=exc.detail, code=exc.code, loc=exc.loc)
    return JSONResponse(status_code=exc.status, content=body.model_dump(mode="json"), headers=exc.headers)


def from_budget(exc: TenantBudgetExhausted) -> ApiError:
    """Today's budget → 429 with ``Retry-After`` (seconds until 00:00 UTC); the total budget → 402."""
    if exc.daily:
        return ApiError(429, exc.code, exc.message, headers={"Retry-After": str(exc.retry_after_s)})
    return ApiError(402, exc.code, exc.message)


def from_idempotency_conflict(exc: IdempotencyConflict) -> ApiError:
    return ApiError(409, "idempotency_conflict", str(exc))


def from_limit_exceeded(exc: LimitExceeded) -> ApiError:
    """A tenant's rate or concurrency limit → 429 with ``Retry-After``."""
    return ApiError(429, exc.code, exc.message, headers={"Retry-After": str(exc.retry_after_s)})


def from_service_error(exc: ServiceError) -> ApiError:
    return ApiError(503, "model_unavailable", f"the model is unavailable: {exc}", headers={"Retry-After": "5"})


JOB_ERROR_STATUS: dict[type[JobError], int] = {JobCancelled: 409, JobFailed: 502, JobTimedOut: 504}


def job_error_json(exc: JobError) -> JSONResponse:
    """A job that gave no answer: cancelled 409, failed 502, not done in time 504 (the job goes on)."""
    detail = exc.detail
    if isinstance(exc, JobTimedOut):
        detail = f"{detail}; it goes on: GET /v1/jobs/{exc.job_id}"
    body = JobErrorOut(detail=detail, code=exc.code, loc=None, job_id=exc.job_id)
    return JSONResponse(
        status_code=JOB_ERROR_STATUS.get(type(exc), 502),
        content=body.model_dump(mode="json"),
        headers={"X-Ecoalign-Job-Id": exc.job_id},
    )


def review_error_json(exc: review_errors.ReviewError) -> JSONResponse:
    """The review queue: missing → 404, a lease held by another (or not held by the caller) → 409, a bad field
    → 422 naming it."""
    if isinstance(exc, review_errors.InvalidReview):
        return validation_response([{"loc": ["body", exc.field], "msg": str(exc), "type": "value_error"}])
    if isinstance(exc, review_errors.ReviewNotFound):
        return error_json(ApiError(404, exc.code, str(exc)))
    return error_json(ApiError(409, exc.code, str(exc)))


# Each domain error of the runtime and its HTTP answer: the one place where they are mapped.
DOMAIN_ERRORS: dict[type[Exception], Callable[[Any], JSONResponse]] = {
    review_errors.ReviewError: review_error_json,
    TenantBudgetExhausted: lambda exc: error_json(from_budget(exc)),
    IdempotencyConflict: lambda exc: error_json(from_idempotency_conflict(exc)),
    LimitExceeded: lambda exc: error_json(from_limit_exceeded(exc)),
    ServiceError: lambda exc: error_json(from_service_error(exc)),
    JobError: job_error_json,
    # webhooks (issue 17): a bad url or event list names its field; a missing endpoint is 404; over the cap 409
    WebhookInputError: lambda exc: validation_response([{"loc": [exc.where, exc.field], "msg": str(exc),
                                                          "type": "value_error"}]),
    EndpointNotFound: lambda exc: error_json(not_found("webhook endpoint")),
    TooManyEndpoints: lambda exc: error_json(ApiError(409, "too_many_endpoints", str(exc))),
    PolicyNotFound: lambda exc: error_json(not_found("policy")),
    UnknownPolicyChoice: lambda exc: validation_response(
        [{"loc": ["body", "ecoalign", "policy"], "msg": str(exc), "type": "value_error"}]
    ),
    UnknownPolicyCursor: lambda exc: validation_response([{"loc": ["query", "after"], "msg": str(exc),
                                                            "type": "value_error"}]),
}


def _handler(render: Callable[[Any], JSONResponse]) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handle(_: Request, exc: Exception) -> JSONResponse:
        return render(exc)

    return handle


def _clean(issue: Mapping[str, Any]) -> dict[str, Any]:
    loc = [p if isinstance(p, int) else str(p) for p in issue.get("loc", ())]
    return {"loc": loc, "msg": str(issue.get("msg", "")), "type": str(issue.get("type", "value_error"))}


def allowed_methods(app: FastAPI, scope: Mapping[str, Any]) -> list[str]:
    """Every method some route accepts at this path (the union over routes sharing the path)."""
    methods: set[str] = set()
    for route in app.router.routes:
        if isinstance(route, BaseRoute) and getattr(route, "methods", None):
            match, _ = route.matches({**scope, "method": "GET"})
            if match is not Match.NONE:
                methods |= set(route.methods or ())  # type: ignore[attr-defined]
    return sorted(methods - {"HEAD"})


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the shapes above."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_json(exc)

    for kind, render in DOMAIN_ERRORS.items():
        app.add_exception_handler(kind, _handler(render))

    @app.exception_handler(FieldError)
    async def _field_error(_: Request, exc: FieldError) -> JSONResponse:
        return validation_response([{"loc": exc.loc, "msg": exc.msg, "type": "value_error"}])

    @app.exception_handler(batch_errors.BatchError)
    async def _batch_error(_: Request, exc: batch_errors.BatchError) -> JSONResponse:
        mapped = from_batch_error(exc)
        if isinstance(mapped, FieldError):
            return validation_response([{"loc": mapped.loc, "msg": mapped.msg, "type": "value_error"}])
        return error_json(mapped)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response([_clean(e) for e in exc.errors()])

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's "error parsing the body" (e.g. not UTF-8): same as bad JSON
            return validation_response([{"loc": ["body"], "msg": f"{exc.detail}: send UTF-8 JSON",
                                         "type": "json_invalid"}])
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, f"http_{exc.status_code}")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Starlette names only the first matching route's methods
            headers["Allow"] = ", ".join(allowed_methods(app, request.scope))
        return error_json(ApiError(exc.status_code, code, str(exc.detail), headers=headers))

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return error_json(ApiError(503, "database_unavailable", "the database is unavailable; retry later",
                                   headers={"Retry-After": "5"}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_json(ApiError(500, "internal_error", "internal error; the request was logged"))


def from_input_error(exc: InputError) -> ApiError | FieldError:
    """A moderation item the shared parser refused: an image over the size limit → 413, anything else → 422, both
    naming the field in the body."""
    loc: list[str | int] = ["body", *exc.loc]
    if exc.too_large:
        return ApiError(413, "payload_too_large", exc.reason, loc=loc)
    return FieldError(loc, exc.reason)
