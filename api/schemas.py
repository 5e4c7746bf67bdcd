"""Pydantic models of the HTTP API: what ``/openapi.json`` promises, and what every handler returns.

The request side checks *shape* (types, ranges, enums; the parts shared with the batch workers, and the chat
completion body, are in ``ecoalign.chat_schema``); meaning (a data URL that decodes to a real image, text
that is not blank, size limits from settings) is checked by ``ecoalign.runtime.requests`` and ``Policy`` and
mapped to the same 422 body, so a client sees one error format whatever layer said no.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# The request shapes the batch workers parse too (chat messages, parts, the policy) live in the engine package.
from ecoalign.chat_schema import MAX_MESSAGES, MAX_PARTS, ContentPart, NonBlank, PolicyIn, StrategyName, Text
from ecoalign.chat_schema import ImagePart as ImagePart  # re-exported for the API's other request models
from ecoalign.chat_schema import RequestModel as _In
from ecoalign.chat_schema import TextPart as TextPart
from ecoalign.engine.strategies import STRATEGIES

JobStatusName = Literal["queued", "running", "succeeded", "failed", "cancelled"]
DecisionName = Literal["answered", "refused"]
NodeStatusName = Literal["pending", "running", "done", "pruned", "failed"]
NodeKindName = Literal["root", "thought", "answer", "refusal"]


# -- requests -------------------------------------------------------------------------------------------------------
class ChatMessage(_In):
    """One OpenAI chat message. User and assistant text is the request; system turns are accepted and ignored
    (the model is prompted with ecoalign's own system prompt, so a client cannot switch the alignment off)."""

    role: Literal["system", "user", "assistant"]
    content: NonBlank | Annotated[list[ContentPart], Field(min_length=1, max_length=MAX_PARTS)]
    name: Text | None = Field(None, max_length=64)


EXAMPLE_JOB = {
    "messages": [{"role": "user", "content": [{"type": "text", "text": "How do I get a stain out of a wool coat?"}]}],
    "policy": {"budget": 4000, "tau": 0.5},
    "strategy": "ecoalign",
}


class JobCreate(_In):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_JOB]})

    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    policy: PolicyIn
    strategy: StrategyName = Field(
        "ecoalign",
        description="ecoalign (the method) or a baseline / ablation",
        json_schema_extra={"enum": list(STRATEGIES)},
    )


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


class PathOut(BaseModel):
    node_id: str = Field(description="the path's last node (an answer or a refusal)")
    kind: NodeKindName
    status: NodeStatusName
    path: list[str] = Field(description="node ids, root first")
    safety: float = Field(description="S(P): the weakest step's safety")
    utility: float = Field(description="U(P): the last node's utility")
    cost: int = Field(description="C(P): tokens over the path")
    pareto: bool = Field(description="on the Pareto front of the complete paths (S up, U up, C down)")


class GraphOut(BaseModel):
    job_id: str
    nodes: list[NodeOut]
    edges: list[EdgeOut]
    paths: list[PathOut] = Field(default_factory=list, description="every complete path with S, U, C")
    gen_ai: dict[str, Any] | None = Field(
        None, description="the job's model calls summed under OpenTelemetry GenAI names (gen_ai.usage.*)"
    )


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
