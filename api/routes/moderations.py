"""``POST /v1/moderations`` in OpenAI's shape.

The scan is fast and offline, so the endpoint answers synchronously: every input is scanned (each text and image
segment on its own, the weakest wins), the confident ones are settled at zero tokens, and only the uncertain ones
go to the LLM judge (when one is configured: ``ECOALIGN_JUDGE_URL`` / ``ECOALIGN_JUDGE_MODEL``), within a per-item
budget and a per-request budget. Judge tokens are charged to the caller's tenant budget (total and daily) with
the same conditional UPDATEs as the job ledger: reserved before the call, settled with the real ``usage`` after.
Every decision's trace is stored in ``moderation_traces`` under the ``trace_id`` the result carries.

The scanner, judge, tenant budget and traces are ``ecoalign.runtime.moderation``'s, shared with the Batch API's
moderation lines (``workers.batch_tasks``); the budgets are ``ECOALIGN_MODERATION_*`` (``ecoalign.settings``).
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Depends, FastAPI
from fastapi import Request as HttpRequest
from pydantic import BaseModel, ConfigDict, Field, create_model

from api.auth import CurrentPrincipal
from api.context import AppContext, get_ctx
from api.errors import ApiError, FieldError
from api.routes.jobs import _401, _422, _503
from api.schemas import ErrorOut, ImagePart, Text, TextPart, _In
from ecoalign.categories import MODERATION_CATEGORIES
from ecoalign.content import Image, Request
from ecoalign.media import MediaError, load_image_url
from ecoalign.moderation import ModerationPolicy
from ecoalign.runtime.moderation import ModerationEngine, TenantRunBudget, store_traces, traced
from ecoalign.settings import Settings
from ecoalign.store.db import run_in_transaction

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/moderations", tags=["moderations"])
Ctx = Annotated[AppContext, Depends(get_ctx)]

MAX_INPUTS = 256
MAX_PARTS = 64
_ENGINE_LOCK = threading.Lock()


def engine_for(app: FastAPI, settings: Settings) -> ModerationEngine:
    """The app's ``ModerationEngine`` (built on first use, then shared by every request)."""
    with _ENGINE_LOCK:
        found = getattr(app.state, "moderation_engine", None)
        if found is None:
            found = ModerationEngine(settings)
            app.state.moderation_engine = found
    return cast(ModerationEngine, found)


# -- request and response models -----------------------------------------------------------------------------------
class ModerationOptions(_In):
    """ecoalign's extension: budgets for this request (each capped by the server's own setting)."""

    budget: int | None = Field(None, ge=0, le=10**9, description="judge tokens the whole request may spend")
    item_budget: int | None = Field(None, ge=0, le=10**9, description="judge tokens one input may spend")


ModerationPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class ModerationCreate(_In):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"input": "How do I get a stain out of a wool coat?"}]}
    )

    input: (
        Text
        | Annotated[list[Text], Field(min_length=1, max_length=MAX_INPUTS)]
        | Annotated[list[ModerationPart], Field(min_length=1, max_length=MAX_PARTS)]
    ) = Field(
        description="a string, a list of strings (one result each), or a list of text/image_url parts (one result)"
    )
    model: str | None = Field(None, max_length=200, description="accepted for compatibility; the scanner answers")
    ecoalign: ModerationOptions | None = None


def _category_model(name: str, kind: Any, doc: str) -> type[BaseModel]:
    fields: dict[str, Any] = {
        key.replace("/", "_").replace("-", "_"): (kind, Field(alias=key)) for key in MODERATION_CATEGORIES
    }
    return create_model(name, __config__=ConfigDict(populate_by_name=True), __doc__=doc, **fields)


Categories = _category_model("ModerationCategories", bool, "Whether each OpenAI category is flagged.")
CategoryScores = _category_model("ModerationCategoryScores", float, "Each OpenAI category's score, 0..1.")
AppliedTypes = _category_model(
    "ModerationAppliedInputTypes", list[Literal["text", "image"]], "Which input types carried each category."
)


class WeakestSegment(BaseModel):
    kind: str
    index: int
    excerpt: str
    safety: float


class ModerationExtension(BaseModel):
    """How ecoalign decided: the path (scan or judge), the weakest segment, the tokens spent, the trace id."""

    decision: str
    scan_safety: float
    weakest_segment: WeakestSegment | None = None
    tokens: int
    evaluators: list[str]
    trace_id: str
    note: str | None = None


class ModerationResultOut(BaseModel):
    flagged: bool
    categories: Categories  # type: ignore[valid-type]
    category_scores: CategoryScores  # type: ignore[valid-type]
    category_applied_input_types: AppliedTypes  # type: ignore[valid-type]
    ecoalign: ModerationExtension


class ModerationOut(BaseModel):
    id: str
    model: str
    results: list[ModerationResultOut]


# -- the endpoint --------------------------------------------------------------------------------------------------
@router.post(
    "",
    response_model=ModerationOut,
    summary="Classify text and images (OpenAI's moderation shape, plus how ecoalign decided)",
    operation_id="createModeration",
    responses={
        **_401,
        413: {"model": ErrorOut, "description": "the body or one image is over the size limit"},
        **_422,
        **_503,
    },
)
def create_moderation(body: ModerationCreate, principal: CurrentPrincipal, ctx: Ctx, http: HttpRequest) -> dict:
    settings = ctx.settings
    requests = parse_inputs(body.input, settings, ctx.remote_fetch)
    options = body.ecoalign or ModerationOptions()
    budget = _capped(settings.moderation_request_budget, options.budget)
    item_budget = _capped(settings.moderation_item_budget, options.item_budget)
    return moderate(
        ctx,
        engine_for(http.app, settings),
        requests,
        tenant_id=principal.tenant_id,
        budget=budget,
        item_budget=item_budget,
    )


def _capped(server: int, asked: int | None) -> int:
    return server if asked is None else min(server, asked)


def parse_inputs(value: Any, settings: Settings, remote_fetch: Any) -> list[Request]:
    """The body's ``input`` as requests: one per string, or one for a list of parts. 422/413 name the field."""
    if isinstance(value, str):
        return [_text_request(value, settings, ["body", "input"])]
    if all(isinstance(v, str) for v in value):
        return [_text_request(v, settings, ["body", "input", i]) for i, v in enumerate(value)]
    texts: list[str] = []
    images: list[Image] = []
    for i, part in enumerate(value):
        if isinstance(part, TextPart):
            texts.append(part.text)
            continue
        where: list[str | int] = ["body", "input", i, "image_url", "url"]
        if len(images) >= settings.max_images:
            raise FieldError(["body", "input", i], f"more than {settings.max_images} images")
        images.append(load_image(part.image_url.url, settings.max_image_bytes, remote_fetch, where))
    text = "\n".join(texts)
    if len(text) > settings.max_text_chars:
        raise FieldError(["body", "input"], f"the text has {len(text)} characters, over {settings.max_text_chars}")
    if not text.strip() and not images:
        raise FieldError(["body", "input"], "the input is empty (no text and no image)")
    return [Request(text=text, images=tuple(images))]


def _text_request(text: str, settings: Settings, loc: list[str | int]) -> Request:
    if not text.strip():
        raise FieldError(loc, "must contain a non-whitespace character")
    if len(text) > settings.max_text_chars:
        raise FieldError(loc, f"the text has {len(text)} characters, over {settings.max_text_chars}")
    return Request(text=text)


def load_image(url: str, max_bytes: int, remote_fetch: Any, loc: list[str | int]) -> Image:
    """A data: URL, or an http(s) URL when remote images are on; 413 if too large, else 422 naming ``loc``."""
    try:
        return load_image_url(url, max_bytes, remote_fetch)
    except MediaError as exc:
        if exc.too_large:
            raise ApiError(413, "payload_too_large", str(exc), loc=loc) from None
        raise FieldError(loc, str(exc)) from None


def moderate(
    ctx: AppContext,
    engine: ModerationEngine,
    requests: list[Request],
    *,
    tenant_id: str,
    budget: int,
    item_budget: int,
) -> dict[str, Any]:
    """Moderate ``requests`` under the budgets, store their traces, return the response body."""
    policy = ModerationPolicy(item_budget=item_budget)
    run_budget = TenantRunBudget(budget, ctx.sessions, tenant_id)
    moderator = engine.moderator(policy, run_budget)
    results = moderator.moderate_many(requests)
    response_id = f"modr-{uuid.uuid4().hex}"
    rows = traced(response_id, None, tenant_id, results)
    run_in_transaction(ctx.sessions, lambda s: store_traces(s, rows))
    return {
        "id": response_id,
        "model": moderator.model_id,
        "results": [r.to_openai() for r in results],
    }
