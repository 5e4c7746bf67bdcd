"""A stored job as training examples in TRL's conversational dataset types (DPO, SFT, KTO).

TRL's documented columns (its "Dataset formats and types" guide): preference ``prompt`` / ``chosen`` / ``rejected``
(DPOTrainer), language modeling ``messages`` (SFTTrainer), unpaired preference ``prompt`` / ``completion`` /
``label`` (KTOTrainer); each a list of ``{"role", "content"}`` messages. A vision example has an ``images`` column
and its content is a list of parts, ``{"type": "image"}`` where an image goes and ``{"type": "text", "text": ...}``.

What is preferred, from the graph (the method: a path is as safe as its weakest step):

* **chosen**: the job's selected path's last node (an answer, or a refusal the model wrote), when that path's
  weakest-link safety is at least the job's τ (a process-blind path chosen by a mean-based baseline is skipped);
* **rejected**: another answer or refusal node to the same prompt: first the unsafe ones (path safety below τ,
  which is what the search prunes), least safe first; then safe ones of lower value ``U − λ·C/1000``.

KTO labels must be absolute (TRL warns that a DPO "rejected" may still be good): ``True`` for the chosen,
``False`` only for the unsafe ones; a safe answer that was merely worth less is not a bad example.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ecoalign.engine.graph import NodeKind, NodeStatus, ThoughtGraph
from ecoalign.engine.metrics import PathMetrics, path_metrics
from ecoalign.engine.policy import Policy
from ecoalign.media import MediaError, decode_data_url
from ecoalign.store.exports import StoredJob

MAX_EXPORT_IMAGE_BYTES = 64 * 1024 * 1024  # stored requests were validated on the way in; this only guards decoding


class ExportFormat(StrEnum):
    DPO = "dpo"
    SFT = "sft"
    KTO = "kto"
    REVIEW_LABELS = "review-labels"  # not TRL: a moderation classifier's (text, label) rows (ecoalign.export.labels)


# The TRL columns of each format (``images`` is added by the writer when images are exported).
COLUMNS: dict[ExportFormat, tuple[str, ...]] = {
    ExportFormat.DPO: ("prompt", "chosen", "rejected"),
    ExportFormat.SFT: ("messages",),
    ExportFormat.KTO: ("prompt", "completion", "label"),
    ExportFormat.REVIEW_LABELS: (
        "text", "label", "verdict", "categories", "machine_flagged", "machine_categories", "machine_category_scores",
        "policy", "trace_id", "task_id", "decided_at",
    ),
}


@dataclass(frozen=True)
class ExampleImage:
    data: bytes
    media_type: str
    sha256: str

    @property
    def extension(self) -> str:
        return self.media_type.split("/")[-1].replace("jpeg", "jpg")


@dataclass(frozen=True)
class Example:
    """One output row: the TRL columns (without images), its images, and where it came from."""

    columns: dict[str, Any]
    images: tuple[ExampleImage, ...]
    job_id: str
    node_ids: tuple[str, ...]
    source: str  # chosen | pruned_unsafe | lower_value | agrees_with_machine | overturns_machine
    evaluators: frozenset[str]
    ids: dict[str, Any] = field(default_factory=dict)  # written, but not content: outside the digest

    def digest(self) -> int:
        """64 bits of the row's content (columns and image hashes, not ``ids``): equal rows, equal digests."""
        canonical = json.dumps(
            [self.columns, [image.sha256 for image in self.images]], sort_keys=True, ensure_ascii=False
        )
        return int.from_bytes(hashlib.blake2b(canonical.encode("utf-8"), digest_size=8).digest(), "big")


@dataclass(frozen=True)
class Options:
    format: ExportFormat
    text_content: bool = False  # content as plain strings (text-only models); jobs with images are skipped
    pairs_per_prompt: int = 4  # DPO pairs / KTO negatives per job at most (0: all)


@dataclass
class Tally:
    """What the export saw, for the manifest (small: counters and a few ids, never rows)."""

    jobs_read: int = 0
    jobs_used: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    rows_by_source: Counter[str] = field(default_factory=Counter)
    evaluators: Counter[str] = field(default_factory=Counter)
    reviewers: Counter[str] = field(default_factory=Counter)  # review-labels: whose verdicts the labels are


@dataclass(frozen=True)
class _Completion:
    node_id: str
    text: str
    metrics: PathMetrics
    value: float
    evaluators: frozenset[str]


class BadStoredRequest(ValueError):
    """A stored request that cannot be read back (named with its job in the manifest's skip counts)."""


def prompt_of(request: dict[str, Any], text_content: bool) -> tuple[list[dict[str, Any]], tuple[ExampleImage, ...]]:
    """The stored OpenAI messages as TRL conversational messages: image parts become ``{"type": "image"}``
    placeholders (in place) and their bytes go to the ``images`` column, in the same order."""
    messages: list[dict[str, Any]] = []
    images: list[ExampleImage] = []
    for message in request.get("messages") or []:
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
        out: list[dict[str, Any]] = []
        for part in parts:
            if part.get("type") == "text":
                out.append({"type": "text", "text": part.get("text", "")})
            elif part.get("type") == "image_url":
                url = part["image_url"]["url"] if isinstance(part["image_url"], dict) else part["image_url"]
                try:
                    image = decode_data_url(str(url), MAX_EXPORT_IMAGE_BYTES)
                except MediaError as exc:
                    raise BadStoredRequest(str(exc)) from None
                images.append(ExampleImage(image.data, image.media_type, image.sha256))
                out.append({"type": "image"})
        role = message.get("role", "user")
        if text_content:
            messages.append({"role": role, "content": "\n".join(p["text"] for p in out if p["type"] == "text")})
        else:
            messages.append({"role": role, "content": out})
    return messages, tuple(images)


def assistant(text: str, text_content: bool) -> list[dict[str, Any]]:
    content: Any = text if text_content else [{"type": "text", "text": text}]
    return [{"role": "assistant", "content": content}]


def _completion(graph: ThoughtGraph, node_id: str, cost_weight: float) -> _Completion:
    metrics = path_metrics(graph, node_id)  # weakest link, whatever the job's strategy aggregated with
    lineage = graph.lineage(node_id)
    return _Completion(
        node_id=node_id,
        text=graph[node_id].text,
        metrics=metrics,
        value=metrics.net_value(cost_weight),
        evaluators=frozenset(n.evaluator for n in lineage if n.evaluator),
    )


def _others(graph: ThoughtGraph, chosen: _Completion, policy: Policy) -> tuple[list[_Completion], list[_Completion]]:
    """(unsafe, lower-value safe) completions to the same prompt, each in the order they are preferred as
    rejections: least safe first; lowest value first."""
    unsafe: list[_Completion] = []
    lower: list[_Completion] = []
    for node in graph.terminals():
        if node.id == chosen.node_id or node.status not in (NodeStatus.DONE, NodeStatus.PRUNED):
            continue
        if not node.text.strip() or node.text == chosen.text or node.safety is None:
            continue
        other = _completion(graph, node.id, policy.cost_weight)
        if other.metrics.safety < policy.tau:
            unsafe.append(other)
        elif other.value < chosen.value:
            lower.append(other)
    unsafe.sort(key=lambda c: (c.metrics.safety, c.node_id))
    lower.sort(key=lambda c: (c.value, c.node_id))
    return unsafe, lower


def _chosen(job: StoredJob, policy: Policy) -> _Completion | str:
    """The selected path's completion, or why the job gives none."""
    path = job.row.path or []
    graph = job.graph
    if not path or path[-1] not in graph:
        return "no_chosen_path"
    last = graph[path[-1]]
    if last.kind is NodeKind.ROOT or last.status is not NodeStatus.DONE or not last.text.strip():
        return "no_chosen_path"
    chosen = _completion(graph, last.id, policy.cost_weight)
    if chosen.metrics.safety < policy.tau:
        return "chosen_path_unsafe"
    return chosen


def examples_of(job: StoredJob, options: Options, tally: Tally) -> Iterator[Example]:
    """The rows one job gives in ``options.format`` (none when it has no safe chosen path; the tally says why)."""
    tally.jobs_read += 1
    policy = Policy.from_dict(job.row.policy)
    chosen = _chosen(job, policy)
    if isinstance(chosen, str):
        tally.skipped[chosen] += 1
        return
    try:
        prompt, images = prompt_of(job.row.request, options.text_content)
    except BadStoredRequest:
        tally.skipped["unreadable_request"] += 1
        return
    if images and options.text_content:
        tally.skipped["has_images_text_content"] += 1
        return
    unsafe, lower = _others(job.graph, chosen, policy)
    limit = options.pairs_per_prompt or None
    rows = list(_rows(job.row.id, chosen, unsafe, lower, prompt, images, options, limit))
    if not rows:
        tally.skipped["no_rejected_completion"] += 1
        return
    tally.jobs_used += 1
    yield from rows


def _rows(
    job_id: str,
    chosen: _Completion,
    unsafe: list[_Completion],
    lower: list[_Completion],
    prompt: list[dict[str, Any]],
    images: tuple[ExampleImage, ...],
    options: Options,
    limit: int | None,
) -> Iterator[Example]:
    text_content = options.text_content
    chosen_msg = assistant(chosen.text, text_content)

    def example(columns: dict[str, Any], source: str, *others: _Completion) -> Example:
        evaluators = chosen.evaluators.union(*(o.evaluators for o in others))
        node_ids = (chosen.node_id, *(o.node_id for o in others))
        return Example(columns, images, job_id, node_ids, source, evaluators)

    if options.format is ExportFormat.SFT:
        yield example({"messages": prompt + chosen_msg}, "chosen")
    elif options.format is ExportFormat.DPO:
        rejected = [(c, "pruned_unsafe") for c in unsafe] + [(c, "lower_value") for c in lower]
        for other, source in rejected[:limit]:
            columns: dict[str, Any] = {
                "prompt": prompt, "chosen": chosen_msg, "rejected": assistant(other.text, text_content)
            }
            yield example(columns, source, other)
    else:
        yield example({"prompt": prompt, "completion": chosen_msg, "label": True}, "chosen")
        for other in unsafe[:limit]:
            columns = {"prompt": prompt, "completion": assistant(other.text, text_content), "label": False}
            yield Example(columns, images, job_id, (other.node_id,), "pruned_unsafe", other.evaluators)
