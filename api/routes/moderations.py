"""``POST /v1/moderations`` in OpenAI's shape, and the moderation service the Batch API workers share with it.

The scan is fast and offline, so the endpoint answers synchronously: every input is scanned (each text and image
segment on its own, the weakest wins), the confident ones are settled at zero tokens, and only the uncertain ones
go to the LLM judge (when one is configured: ``ECOALIGN_JUDGE_URL`` / ``ECOALIGN_JUDGE_MODEL``), within a per-item
budget and a per-request budget. Judge tokens are charged to the caller's tenant budget (total and daily) with
the same conditional UPDATEs as the job ledger: reserved before the call, settled with the real ``usage`` after.
Every decision's trace is stored in ``moderation_traces`` under the ``trace_id`` the result carries.

Shared with ``workers.batch_tasks`` (kept here so one module owns moderation for HTTP and batches):
``GatewaySettings``, ``ModerationEngine``, ``TenantRunBudget`` and ``store_traces``.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from datetime import date
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Depends, FastAPI
from fastapi import Request as HttpRequest
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session, sessionmaker

from api.auth import CurrentPrincipal
from api.context import AppContext, get_ctx
from api.errors import ApiError, FieldError
from api.routes.jobs import _401, _422, _503
from api.schemas import ErrorOut, ImagePart, Text, TextPart, _In
from ecoalign.batch import trace_rows
from ecoalign.categories import MODERATION_CATEGORIES
from ecoalign.content import Image, Request
from ecoalign.media import MediaError, decode_data_url
from ecoalign.moderation import ModerationJudge, ModerationPolicy, ModerationResult, Moderator, RunBudget
from ecoalign.settings import Settings
from ecoalign.store import ledger
from ecoalign.store.batch_models import ModerationTrace
from ecoalign.store.db import run_in_transaction
from ecoalign.store.models import Tenant, TenantDailyUsage, utcnow

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/moderations", tags=["moderations"])
Ctx = Annotated[AppContext, Depends(get_ctx)]

TENANTS = cast(Table, Tenant.__table__)
DAILY = cast(Table, TenantDailyUsage.__table__)
TRACES = cast(Table, ModerationTrace.__table__)
MAX_INPUTS = 256
MAX_PARTS = 64


# -- settings of the moderation product --------------------------------------------------------------------------
class GatewaySettings(BaseSettings):
    """Settings of the OpenAI-compatible surface (moderations, files, batches, chat), from ``ECOALIGN_*``.

    Kept apart from ``ecoalign.settings.Settings`` only so these modules could be written in parallel; the names
    are final (``ECOALIGN_CHAT_MODE``, ...). Tests override them per app with ``app.state.gateway = ...``.
    """

    model_config = SettingsConfigDict(env_prefix="ECOALIGN_", extra="ignore")

    max_file_bytes: int = Field(64 * 1024 * 1024, ge=1, description="largest file POST /v1/files accepts (413)")
    max_batch_lines: int = Field(50_000, ge=1, description="lines of one batch input file; more fails the batch")
    moderation_request_budget: int = Field(20_000, ge=0, description="judge tokens one /v1/moderations may spend")
    moderation_item_budget: int = Field(2_000, ge=0, description="judge tokens one moderated input may spend")
    batch_token_budget: int | None = Field(None, ge=0, description="judge tokens one batch may spend (None: no cap)")
    chat_mode: Literal["celery", "inprocess"] = Field(
        "celery", description="/v1/chat/completions: run the job on the Celery workers, or in the API process"
    )
    chat_timeout_s: float = Field(120.0, gt=0, description="how long /v1/chat/completions waits for its job (504)")
    chat_poll_s: float = Field(0.1, gt=0, description="how often /v1/chat/completions looks at its job")
    chat_budget: int = Field(4000, ge=1, description="token budget of a chat completion's job unless the body sets it")
    batch_max_attempts: int = Field(3, ge=1, description="deliveries of one batch line before it fails as poison")
    batch_stall_s: float = Field(
        600.0, gt=0, description="a batch with no progress for this long gets its unfinished lines enqueued again"
    )


_GATEWAY_LOCK = threading.Lock()


def gateway(app: FastAPI) -> GatewaySettings:
    """The app's gateway settings: ``app.state.gateway`` if set, else read from the environment once."""
    found = getattr(app.state, "gateway", None)
    if found is None:
        with _GATEWAY_LOCK:
            found = getattr(app.state, "gateway", None)
            if found is None:
                found = GatewaySettings()
                app.state.gateway = found
    return cast(GatewaySettings, found)


# -- scanner and judge, built once per process --------------------------------------------------------------------
class ModerationEngine:
    """The scanner (``ECOALIGN_EVALUATOR``: offline or heuristic) and the optional LLM judge, built on first use.

    Thread-safe; one per API app and one per worker process. A ``Moderator`` is cheap and is made per request
    (it carries that request's policy and budget).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._scanner: Any = None
        self._judge: ModerationJudge | None = None
        self._judge_built = False
        self._closers: list[Any] = []

    def scanner(self) -> Any:
        with self._lock:
            if self._scanner is None:
                name = self.settings.evaluator
                if name == "heuristic":
                    from ecoalign.evaluators.heuristic import HeuristicScanner

                    self._scanner = HeuristicScanner()
                elif name == "offline":
                    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                    from ecoalign.evaluators.scanner import OfflineScanner

                    self._scanner = OfflineScanner()
                else:
                    raise RuntimeError(f"unknown evaluator {name!r}: expected offline or heuristic")
            return self._scanner

    def judge(self) -> ModerationJudge | None:
        with self._lock:
            if not self._judge_built:
                s = self.settings
                if s.judge_url:
                    from ecoalign.moderation import ChatModerationJudge
                    from ecoalign.providers.openai_http import OpenAIChatProvider

                    if not s.judge_model:
                        raise RuntimeError("ECOALIGN_JUDGE_URL needs ECOALIGN_JUDGE_MODEL")
                    provider = OpenAIChatProvider(
                        s.judge_url,
                        s.judge_model,
                        api_key=s.judge_api_key,
                        timeout_s=s.model_timeout_s,
                        max_retries=s.model_max_retries,
                        max_concurrency=s.model_concurrency,
                    )
                    self._closers.append(provider.close)
                    self._judge = ChatModerationJudge(provider)
                self._judge_built = True
            return self._judge

    def moderator(self, policy: ModerationPolicy, budget: RunBudget) -> Moderator:
        return Moderator(self.scanner(), self.judge(), policy, budget)

    def close(self) -> None:
        for close in self._closers:
            close()
        self._closers.clear()


def engine_for(app: FastAPI, settings: Settings) -> ModerationEngine:
    with _GATEWAY_LOCK:
        found = getattr(app.state, "moderation_engine", None)
        if found is None:
            found = ModerationEngine(settings)
            app.state.moderation_engine = found
    return cast(ModerationEngine, found)


# -- tenant budget -------------------------------------------------------------------------------------------------
def reserve_tenant_tokens(session: Session, tenant_id: str, day: date, tokens: int) -> bool:
    """Hold ``tokens`` on the tenant's total and daily counters, or change nothing and return False.

    The same conditional UPDATEs as ``ecoalign.store.ledger`` (lock order: tenant, then its day), so moderation
    and jobs draw on one budget and neither can overspend it.
    """
    savepoint = session.begin_nested()
    if not ledger.reserve_tenant(session, tenant_id, day, tokens):
        savepoint.rollback()
        return False
    savepoint.commit()
    return True


def settle_tenant_tokens(session: Session, tenant_id: str, day: date, held: int, used: int) -> int:
    """Release ``held`` and charge ``used`` (never beyond the budgets; the rest is the caller's overrun).
    Returns the tokens charged."""
    tenant = session.execute(
        select(TENANTS.c.token_budget_total, TENANTS.c.token_budget_daily, TENANTS.c.tokens_spent,
               TENANTS.c.tokens_reserved)
        .where(TENANTS.c.id == tenant_id)
        .with_for_update()
    ).first()
    if tenant is None:
        return 0
    held = min(held, int(tenant.tokens_reserved))
    charge = used
    if tenant.token_budget_total is not None:
        charge = min(charge, tenant.token_budget_total - tenant.tokens_spent - (tenant.tokens_reserved - held))
    ledger.ensure_daily_row(session, tenant_id, day)
    daily = session.execute(
        select(DAILY.c.spent, DAILY.c.reserved).where(DAILY.c.tenant_id == tenant_id, DAILY.c.day == day)
        .with_for_update()
    ).one()
    day_held = min(held, int(daily.reserved))
    if tenant.token_budget_daily is not None:
        charge = min(charge, tenant.token_budget_daily - daily.spent - (daily.reserved - day_held))
    charge = max(int(charge), 0)
    session.execute(
        update(TENANTS).where(TENANTS.c.id == tenant_id)
        .values(tokens_reserved=TENANTS.c.tokens_reserved - held, tokens_spent=TENANTS.c.tokens_spent + charge)
    )
    session.execute(
        update(DAILY).where(DAILY.c.tenant_id == tenant_id, DAILY.c.day == day)
        .values(reserved=DAILY.c.reserved - day_held, spent=DAILY.c.spent + charge)
    )
    return charge


class TenantRunBudget(RunBudget):
    """A ``RunBudget`` (the request's or batch line's own cap) whose every reservation is also held on the
    tenant's total and daily budget in the database, and settled there with the judge's real usage.

    If a process dies between reserve and settle (during one judge call) that reservation stays held on the
    tenant: the budget errs on the safe side (it can only be under-used, never overspent).
    """

    def __init__(self, total: int | None, sessions: sessionmaker[Session], tenant_id: str | None) -> None:
        super().__init__(total)
        self.sessions = sessions
        self.tenant_id = tenant_id
        self._held: dict[int, tuple[int, date]] = {}
        self.charged = 0

    def reserve(self, tokens: int) -> int | None:
        reservation = super().reserve(tokens)
        if reservation is None or self.tenant_id is None:
            return reservation
        tenant_id, day = self.tenant_id, utcnow().date()
        try:
            ok = run_in_transaction(self.sessions, lambda s: reserve_tenant_tokens(s, tenant_id, day, tokens))
        except Exception:
            super().refund(reservation)
            raise
        if not ok:
            super().refund(reservation)
            return None
        with self._lock:
            self._held[reservation] = (tokens, day)
        return reservation

    def settle(self, reservation: int, used: int) -> None:
        super().settle(reservation, used)
        self._release(reservation, used)

    def refund(self, reservation: int) -> None:
        super().refund(reservation)
        self._release(reservation, 0)

    def _release(self, reservation: int, used: int) -> None:
        with self._lock:
            held = self._held.pop(reservation, None)
        if held is None or self.tenant_id is None:
            return
        tenant_id, (tokens, day) = self.tenant_id, held
        charged = run_in_transaction(self.sessions, lambda s: settle_tenant_tokens(s, tenant_id, day, tokens, used))
        with self._lock:
            self.charged += charged


def store_traces(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert ``moderation_traces`` rows (``ecoalign.batch.trace_rows`` plus ``tenant_id``) in one statement."""
    if rows:
        session.execute(TRACES.insert(), rows)


def traced(run_id: str, custom_id: str | None, tenant_id: str | None, results: list[ModerationResult]) -> list[dict]:
    rows = trace_rows(run_id, custom_id or "", results)
    for row in rows:
        row["tenant_id"] = tenant_id
        if custom_id is None:
            row["custom_id"] = None
    return rows


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
    conf = gateway(http.app)
    requests = parse_inputs(body.input, ctx.settings, ctx.remote_fetch)
    options = body.ecoalign or ModerationOptions()
    budget = _capped(conf.moderation_request_budget, options.budget)
    item_budget = _capped(conf.moderation_item_budget, options.item_budget)
    return moderate(
        ctx,
        engine_for(http.app, ctx.settings),
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
        if url.startswith("data:"):
            return decode_data_url(url, max_bytes)
        if url.startswith(("http://", "https://")):
            if remote_fetch is None:
                raise MediaError("remote image URLs are disabled (set ECOALIGN_ALLOW_REMOTE_IMAGES=true)")
            return cast(Image, remote_fetch(url))
        raise MediaError("image_url must be a data: URL or an http(s) URL")
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
