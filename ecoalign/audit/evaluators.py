"""The evaluator an audit re-scores with, built from names: ``offline`` (default), ``heuristic``, ``judge``.

Several names make one evaluator, the weakest link of them (``evaluators.combine.WeakestLinkCombiner``), so an
audit can ask a judge and the offline scorer together and no member can outvote a harm another saw. The offline
scorer uses the process's models (the composition root's safety model and OCR engine: loaded once).
``judge`` is any OpenAI-compatible chat model (``judge_url`` + ``judge_model``) read with the project's judge rubric.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ecoalign.evaluators.base import NodeEvaluator
from ecoalign.runtime.root import Root

EVALUATOR_NAMES = ("offline", "heuristic", "judge")


class AuditSetupError(ValueError):
    """The evaluators asked for cannot be built (an unknown name, a judge without a URL or model)."""


@dataclass
class AuditEvaluator:
    """The evaluator and what to close when the audit is done (a judge's HTTP client)."""

    evaluator: NodeEvaluator
    closers: list[Callable[[], Any]] = field(default_factory=list)

    @property
    def evaluator_id(self) -> str:
        return self.evaluator.evaluator_id

    def close(self) -> None:
        for close in self.closers:
            close()
        self.closers.clear()


def _offline(root: Root) -> NodeEvaluator:
    from ecoalign.evaluators.node_scorer import OfflineNodeEvaluator
    from ecoalign.evaluators.scanner import OfflineScanner

    scanner = root.scanner()
    if not isinstance(scanner, OfflineScanner):  # the process scans with another evaluator: same models, own scanner
        scanner = OfflineScanner(root.safety_model, root.ocr)
    return OfflineNodeEvaluator(scanner)


def build_evaluator(
    names: Sequence[str],
    root: Root,
    *,
    judge_url: str | None = None,
    judge_model: str | None = None,
    judge_api_key: str | None = None,
) -> AuditEvaluator:
    """One evaluator of ``names`` (deduplicated, in order); ``AuditSetupError`` if one cannot be built."""
    chosen = list(dict.fromkeys(names or ["offline"]))
    unknown = [n for n in chosen if n not in EVALUATOR_NAMES]
    if unknown:
        raise AuditSetupError(f"unknown evaluator {unknown[0]!r}: expected {', '.join(EVALUATOR_NAMES)}")
    members: list[NodeEvaluator] = []
    closers: list[Callable[[], Any]] = []
    for name in chosen:
        if name == "offline":
            members.append(_offline(root))
        elif name == "heuristic":
            from ecoalign.evaluators.heuristic import HeuristicNodeEvaluator

            members.append(HeuristicNodeEvaluator())
        else:
            members.append(_judge(root, judge_url, judge_model, judge_api_key, closers))
    if len(members) == 1:
        return AuditEvaluator(members[0], closers)
    from ecoalign.evaluators.combine import WeakestLinkCombiner

    return AuditEvaluator(WeakestLinkCombiner(members), closers)


def _judge(
    root: Root, url: str | None, model: str | None, api_key: str | None, closers: list[Callable[[], Any]]
) -> NodeEvaluator:
    from ecoalign.evaluators.judge import LLMJudge
    from ecoalign.runtime.factory import ServiceError, http_provider

    if not url or not model:
        raise AuditSetupError("the judge evaluator needs a judge URL and a judge model")
    try:
        provider = http_provider(root.settings, url, model, api_key)
    except ServiceError as exc:
        raise AuditSetupError(str(exc)) from None
    closers.append(provider.close)
    return LLMJudge(provider)  # a provider error fails that trace alone (the service records it)
