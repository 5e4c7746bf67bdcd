"""Pydantic models of the HTTP API: what ``/openapi.json`` promises, and what every handler returns.

The request side checks *shape* (types, ranges, enums); meaning (a data URL that decodes to a real image, text
that is not blank, size limits from settings) is checked by ``ecoalign.runtime.requests`` and ``Policy`` and
mapped to the same 422 body, so a client sees one error format whatever layer said no.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from ecoalign.engine.strategies import STRATEGIES

JobStatusName = Literal["queued", "running", "succeeded", "failed", "cancelled"]
DecisionName = Literal["answered", "refused"]
NodeStatusName = Literal["pending", "running", "done", "pruned", "failed"]
NodeKindName = Literal["root", "thought", "answer", "refusal"]

MAX_MESSAGES = 256
MAX_PARTS = 64
MAX_TOKENS_FIELD = 1_000_000  # per-call token counts: above any context window; keeps int32 columns safe
MAX_BUDGET = 1_000_000_000  # one job's budget; far below int64


class _In(BaseModel):
    """Request models: unknown fields are an error (a typo in a policy field must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


def _storable(value: str) -> str:
    """PostgreSQL text and JSONB hold neither NUL characters nor unpaired surrogates: refuse them here (422)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no unpaired surrogates)") from None
    return value


Text = Annotated[str, AfterValidator(_storable)]


# -- requests -------------------------------------------------------------------------------------------------------
NonBlank = Annotated[
    str, Field(pattern=r"\S", description="must contain a non-whitespace character"), AfterValidator(_storable)
]


class TextPart(_In):
    type: Literal["text"]
    text: NonBlank


class ImageURL(_In):
    url: Text = Field(description="a data: URL (data:image/png;base64,...); http(s) only if the server allows it")
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_In):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class ChatMessage(_In):
    """One OpenAI chat message. User and assistant text is the request; system turns are accepted and ignored
    (the model is prompted with ecoalign's own system prompt, so a client cannot switch the alignment off)."""

    role: Literal["system", "user", "assistant"]
    content: NonBlank | Annotated[list[ContentPart], Field(min_length=1, max_length=MAX_PARTS)]
    name: Text | None = Field(None, max_length=64)


def _tokens(default: int, *, ge: int = 1, doc: str) -> Any:
    return Field(default, ge=ge, le=MAX_TOKENS_FIELD, description=doc)


class PolicyIn(_In):
    """The policy π (see METHOD.md). Only ``budget`` is required; every other field has the method's default.

    Cross-field rules (``tau_hard <= tau <= tau_easy``) are checked by the engine and reported as 422 too.
    """

    budget: int = Field(ge=0, le=MAX_BUDGET, description="B: tokens (prompt + completion + scoring) for the job")
    tau: float = Field(0.5, ge=0.0, le=1.0, description="τ: minimum path safety (1 = safe)")
    tau_hard: float = Field(0.1, ge=0.0, le=1.0, description="scan below this: straight to a refusal")
    tau_easy: float = Field(0.95, ge=0.0, le=1.0, description="scan above this: a cheap direct answer first")
    branching: int = Field(3, ge=1, le=16, description="m: thoughts per expansion")
    lookahead: int = Field(2, ge=1, le=16, description="k: horizon at full budget")
    discount: float = Field(0.9, gt=0.0, le=1.0, description="δ")
    cost_weight: float = Field(0.05, ge=0.0, le=1e6, description="λ: utility per 1k tokens")
    max_depth: int = Field(4, ge=1, le=16, description="D")
    max_in_flight: int = Field(4, ge=1, le=256, description="nodes generating at once for this job")
    thought_tokens: int = _tokens(96, doc="max completion tokens of a thought")
    answer_tokens: int = _tokens(256, doc="max completion tokens of an answer")
    refusal_tokens: int = _tokens(96, doc="max completion tokens of a model-written refusal")
    refusal_mode: Literal["template", "model"] = "template"
    eval_tokens: int = _tokens(0, ge=0, doc="expected evaluator tokens per node")
    image_tokens: int = _tokens(768, ge=0, doc="prompt-token estimate per image")
    prior_utility: float = Field(0.5, ge=0.0, le=1.0)
    think_gain: float = Field(0.25, ge=0.0, le=1.0)
    forecast_sigma: float = Field(0.15, gt=0.0, le=1e6)
    temperature: float = Field(0.7, ge=0.0, le=2.0)


EXAMPLE_JOB = {
    "messages": [{"role": "user", "content": [{"type": "text", "text": "How do I get a stain out of a wool coat?"}]}],
    "policy": {"budget": 4000, "tau": 0.5},
    "strategy": "ecoalign",
}


class JobCreate(_In):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_JOB]})

    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    policy: PolicyIn
    strategy: str = Field(
        "ecoalign",
        description="ecoalign (the method) or a baseline / ablation",
        json_schema_extra={"enum": list(STRATEGIES)},
    )

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        if value not in STRATEGIES:
            raise ValueError(f"unknown strategy {value!r}; choose one of: {', '.join(STRATEGIES)}")
        return value


# -- responses ------------------------------------------------------------------------------------------------------
class Budget(BaseModel):
    total: int
    reserved: int
    spent: int


class Cost(BaseModel):
    total_tokens: int
    model_calls: int


class ScanSegment(BaseModel):
    kind: str
    index: int
    text: str
    safety: float
    categories: dict[str, float] = Field(default_factory=dict)


class ScanSummary(BaseModel):
    """The global scanner's verdict on the request: each segment (text, each image's OCR text) scored alone."""

    safety: float | None = None
    weakest: int | None = Field(None, description="index into segments of the weakest one")
    categories: dict[str, float] = Field(default_factory=dict)
    evaluator: str | None = None
    model: str | None = None
    tokens: int = 0
    latency_s: float | None = None
    segments: list[ScanSegment] = Field(default_factory=list)


class JobOut(BaseModel):
    id: str
    object: Literal["job"] = "job"
    status: JobStatusName
    decision: DecisionName | None = None
    response: str | None = None
    reason: str | None = Field(None, description="why the search stopped or chose this decision")
    strategy: str
    path: list[str] = Field(default_factory=list, description="node ids from the root to the chosen node")
    path_safety: float | None = None
    utility: float | None = None
    cost: Cost
    budget: Budget
    scan: ScanSummary | None = None
    failure_reason: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[JobOut]
    has_more: bool
    next_cursor: str | None = Field(None, description="pass as ?after= to get the next page")


class NodeOut(BaseModel):
    id: str
    kind: NodeKindName
    action: str
    parents: list[str]
    depth: int
    status: NodeStatusName
    safety: float | None = None
    utility: float | None = None
    categories: dict[str, float] = Field(default_factory=dict)
    tokens: int
    tokens_prompt: int
    tokens_completion: int
    tokens_eval: int
    est_tokens: int
    text: str
    model: str
    evaluator: str
    prune_reason: str | None = None
    failure_reason: str | None = None
    reason: str | None = None
    attempts: int
    gen_ai: dict[str, Any] | None = Field(None, description="OpenTelemetry gen_ai.* attributes of the model call")
    started_at: datetime | None = None
    finished_at: datetime | None = None


class EdgeOut(BaseModel):
    parent: str
    child: str


class GraphOut(BaseModel):
    job_id: str
    nodes: list[NodeOut]
    edges: list[EdgeOut]


# -- errors and probes ----------------------------------------------------------------------------------------------
class ErrorOut(BaseModel):
    """Every non-validation error: a human sentence and a stable machine code."""

    detail: str
    code: str
    loc: list[str | int] | None = Field(None, description="where in the request, when one field is to blame")


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    """422: every problem found, each with the location of the field (``["body", "policy", "tau"]``)."""

    detail: list[ValidationIssue]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(description="'ok' or the error, per dependency (database, broker)")
