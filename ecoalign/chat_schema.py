"""OpenAI chat-shaped request models and their parsing, shared by the HTTP API and the batch workers.

``POST /v1/chat/completions`` and the chat lines of a ``/v1/batches`` input file take the same body
(``ChatCompletionCreate``); ``POST /v1/jobs`` takes the same message parts (``ContentPart``) and policy (``PolicyIn``).
The models check *shape* (types, ranges, enums); meaning (a data URL that decodes to a real image, text that is
not blank, size limits from settings) is checked by ``ecoalign.runtime.requests`` and ``Policy``. ``parse_chat``
turns a body into the job's request, policy and strategy and reports any problem as a ``RequestError`` naming the
field; the API maps it to 422 / 413, a batch line to its error record.

This module is part of the engine package on purpose: the workers must not import the HTTP package (``api``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ecoalign.content import Request as AlignRequest
from ecoalign.engine.policy import Policy, PolicyError
from ecoalign.engine.strategies import STRATEGIES
from ecoalign.runtime.requests import RequestError, request_from_messages
from ecoalign.settings import Settings

MAX_MESSAGES = 256
MAX_PARTS = 64
MAX_TOKENS_FIELD = 1_000_000  # per-call token counts: above any context window; keeps int32 columns safe
MAX_BUDGET = 1_000_000_000  # one job's budget; far below int64


class RequestModel(BaseModel):
    """Request models: unknown fields are an error (a typo in a policy field must not be silently ignored, and the
    422 names it); strict types (an int is accepted where a float is expected, as JSON has one number type, but
    never a bool or a string)."""

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
NonBlank = Annotated[
    str, Field(pattern=r"\S", description="must contain a non-whitespace character"), AfterValidator(_storable)
]



def _known_strategy(value: str) -> str:
    if value not in STRATEGIES:
        raise ValueError(f"unknown strategy {value!r}; choose one of: {', '.join(STRATEGIES)}")
    return value


StrategyName = Annotated[str, AfterValidator(_known_strategy)]  # the method or a baseline / ablation


# -- message parts --------------------------------------------------------------------------------------------------
class TextPart(RequestModel):
    type: Literal["text"]
    text: NonBlank


class ImageURL(RequestModel):
    url: Text = Field(description="a data: URL (data:image/png;base64,...); http(s) only if the server allows it")
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(RequestModel):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


# -- policy ---------------------------------------------------------------------------------------------------------
def _tokens(default: int, *, ge: int = 1, doc: str) -> Any:
    return Field(default, ge=ge, le=MAX_TOKENS_FIELD, description=doc)


class PolicyIn(RequestModel):
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
    allow_merge: bool = Field(False, description="plan merge thoughts (one thought from two lines of reasoning)")


# -- chat completions -----------------------------------------------------------------------------------------------
class ChatCompletionMessage(RequestModel):
    """One chat message. ``system`` and ``developer`` turns are accepted and not sent to the model (ecoalign
    prompts it with its own system prompt, so a client cannot switch the alignment off)."""

    role: Literal["system", "developer", "user", "assistant"]
    content: NonBlank | Annotated[list[ContentPart], Field(min_length=1, max_length=MAX_PARTS)]
    name: Text | None = Field(None, max_length=64)


class ChatPolicyIn(PolicyIn):
    """The job's policy (as in ``POST /v1/jobs``); ``budget`` defaults to the server's ``ECOALIGN_CHAT_BUDGET``."""

    budget: int | None = Field(None, ge=0, le=MAX_BUDGET, description="B: tokens for the whole search")  # type: ignore[assignment]


class ChatOptions(RequestModel):
    """ecoalign's extension (send it with the SDK's ``extra_body={"ecoalign": {...}}``)."""

    policy: ChatPolicyIn | None = None
    strategy: StrategyName = Field("ecoalign", json_schema_extra={"enum": list(STRATEGIES)})


class StreamOptions(RequestModel):
    include_usage: bool | None = Field(None, description="a last chunk (no choices) carries the usage")


class ChatCompletionCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"model": "ecoalign", "messages": [{"role": "user", "content": "How do I bake bread?"}]}]
        }
    )

    model: str = Field(min_length=1, max_length=200, description="echoed back; the server's model answers")
    messages: list[ChatCompletionMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_FIELD, description="cap of the answer's tokens")
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_FIELD, description="same as max_tokens")
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0, description="accepted, not used")
    n: int | None = Field(None, ge=1, le=1, description="only 1")
    stream: bool | None = Field(
        None, description="Server-Sent Events of chat.completion.chunk objects; no text before the search has chosen "
        "its answer (keep-alive and progress comments until then)"
    )
    stream_options: StreamOptions | None = None
    stop: Text | list[Text] | None = Field(None, description="accepted, not used")
    seed: int | None = Field(None, description="accepted, not used (node seeds are derived from node ids)")
    user: Text | None = Field(None, max_length=256)
    metadata: dict[str, Text] | None = Field(None, max_length=16)
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0, description="accepted, not used")
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0, description="accepted, not used")
    ecoalign: ChatOptions | None = None



def parse_chat(body: ChatCompletionCreate, settings: Settings, remote_fetch: Any) -> tuple[AlignRequest, Policy, str]:
    """The job's request, policy and strategy.

    Raises ``RequestError`` naming the field (``messages[0].content[1]``, ``ecoalign.policy``); ``too_large`` is
    set when the client must shrink the request (the API's 413) rather than fix it (422).
    """
    messages = []
    for m in body.messages:
        message = m.model_dump(exclude_none=True)
        if message["role"] == "developer":
            message["role"] = "system"
        messages.append(message)
    request = request_from_messages(
        messages,
        max_image_bytes=settings.max_image_bytes,
        max_images=settings.max_images,
        max_text_chars=settings.max_text_chars,
        remote_fetch=remote_fetch,
    )
    options = body.ecoalign or ChatOptions()
    policy_in = options.policy or ChatPolicyIn()
    values = policy_in.model_dump()
    if values["budget"] is None:
        values["budget"] = settings.chat_budget
    cap = body.max_completion_tokens or body.max_tokens
    if cap is not None and "answer_tokens" not in policy_in.model_fields_set:
        values["answer_tokens"] = cap
    if body.temperature is not None and "temperature" not in policy_in.model_fields_set:
        values["temperature"] = body.temperature
    try:
        policy = Policy.from_dict(values)
    except (PolicyError, TypeError) as exc:
        raise RequestError(str(exc), field="ecoalign.policy") from None
    return request, policy, options.strategy
