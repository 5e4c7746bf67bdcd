"""``POST /v1/moderations`` in OpenAI's shape.

The scan is fast and offline, so the endpoint answers synchronously: every input is scanned (each text and image
segment on its own, the weakest wins), the confident ones are settled at zero tokens, and only the uncertain ones
go to the LLM judge (when one is configured: ``ECOALIGN_JUDGE_URL`` / ``ECOALIGN_JUDGE_MODEL``), within a per-item
budget and a per-request budget. Judge tokens are charged to the caller's tenant budget (total and daily) with
the same conditional UPDATEs as the job ledger: reserved before the call, settled with the real ``usage`` after.
Every decision's trace is stored in ``moderation_traces`` under the ``trace_id`` the result carries.

Only HTTP lives here (the request and response models, budgets capped by the server's, errors as 422/413): the
input is parsed by ``ecoalign.moderation.inputs`` and moderated by ``ecoalign.moderation.service``, the same code
as ``ecoalign moderate`` and the Batch API's moderation lines; the budgets are ``ECOALIGN_MODERATION_*``
(``ecoalign.settings``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, create_model

from api.auth import CurrentPrincipal
from api.context import AppContext, get_ctx
from api.errors import from_input_error
from api.routes.jobs import _401, _422, _503
from api.schemas import ErrorOut, ImagePart, Text, TextPart, _In
from ecoalign.categories import MODERATION_CATEGORIES
from ecoalign.content import Request
from ecoalign.moderation.inputs import InputError, ParseOptions, parse_input
from ecoalign.moderation.service import moderate_request
from ecoalign.policies.service import resolve as resolve_policy
from ecoalign.settings import Settings
from ecoalign.store.db import run_in_transaction

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/moderations", tags=["moderations"])
Ctx = Annotated[AppContext, Depends(get_ctx)]

MAX_INPUTS = 256
MAX_PARTS = 64
# -- request and response models -----------------------------------------------------------------------------------
class PolicyChoice(_In):
    """A tenant policy by id, at a given version (default: its latest)."""

    id: str = Field(min_length=1, max_length=40)
    version: int | None = Field(None, ge=1, le=10**9)


class ModerationOptions(_In):
    """ecoalign's extension: the policy and budgets for this request (each budget capped by the server's)."""

    budget: int | None = Field(None, ge=0, le=10**9, description="judge tokens the whole request may spend")
    item_budget: int | None = Field(None, ge=0, le=10**9, description="judge tokens one input may spend")
    policy: Annotated[str, Field(min_length=1, max_length=40)] | PolicyChoice | None = Field(
        None, description="a policy id (its latest version) or {id, version}; default: the tenant's default policy"
    )


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


class DuplicateMatch(BaseModel):
    """How a duplicate matched its original: the same content, or a near image (perceptual hash distance)."""

    match: Literal["exact", "near"]
    distance: int
    decision: str = Field(description="the original's decision path")


class PolicyRef(BaseModel):
    id: str
    version: int


class CustomCategoryOut(BaseModel):
    flagged: bool
    score: float | None = Field(None, description="the judge's score; null when no judge scored the item")


class ModerationExtension(BaseModel):
    """How ecoalign decided: the path (scan or judge), the weakest segment, the tokens spent, the trace id, the
    policy version it was decided under and the action the policy gives the flagged categories."""

    decision: str
    scan_safety: float
    weakest_segment: WeakestSegment | None = None
    tokens: int
    evaluators: list[str]
    trace_id: str
    policy: PolicyRef
    escalation: Literal["band", "value"]
    action: Literal["none", "flag", "review", "block"]
    actions: dict[str, Literal["flag", "review", "block"]] = Field(description="each flagged category's action")
    custom_categories: dict[str, CustomCategoryOut] | None = None
    note: str | None = None
    duplicate_of: str | None = Field(
        None, description="the trace of the earlier decision this duplicate reuses (zero tokens spent)"
    )
    duplicate: DuplicateMatch | None = None


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
def create_moderation(body: ModerationCreate, principal: CurrentPrincipal, ctx: Ctx) -> dict:
    settings = ctx.settings
    requests = parse_inputs(body, settings, ctx.remote_fetch)
    options = body.ecoalign or ModerationOptions()
    choice = PolicyChoice(id=options.policy) if isinstance(options.policy, str) else options.policy
    policy = run_in_transaction(
        ctx.sessions,
        lambda s: resolve_policy(s, principal.tenant_id, choice.id if choice else None, choice and choice.version),
    )
    return moderate_request(
        ctx.root.moderation(),
        ctx.sessions,
        requests,
        tenant_id=principal.tenant_id,
        budget=_capped(settings.moderation_request_budget, options.budget),
        item_budget=_capped(settings.moderation_item_budget, options.item_budget),
        policy=policy,
    )


def _capped(server: int, asked: int | None) -> int:
    return server if asked is None else min(server, asked)


# The API's own hint when remote images are off (the CLI's names its flag).
_REMOTE_OFF_HINT = "set ECOALIGN_ALLOW_REMOTE_IMAGES=true"


def parse_inputs(body: ModerationCreate, settings: Settings, remote_fetch: Any) -> list[Request]:
    """The body's ``input`` as requests (one per string, or one for a list of parts), parsed by the parser every
    path shares; a problem is a 422 (413 for an image over the size limit) naming the field."""
    options = ParseOptions.from_settings(
        Path("."), settings=settings, allow_remote=remote_fetch is not None, remote_fetch=remote_fetch,
        remote_off_hint=_REMOTE_OFF_HINT,
    )
    try:
        requests, _ = parse_input(body.model_dump(mode="json")["input"], options)
    except InputError as exc:
        raise from_input_error(exc) from None
    return requests
