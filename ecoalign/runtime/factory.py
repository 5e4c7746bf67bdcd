"""Builds the adapters a process needs from settings and command-line choices.

Offline defaults: the local llama.cpp server with the registry's Gemma 3 270M *base* model (a real
OpenAI-compatible server; poor text), the OCR + MiniLM scanner and the offline node evaluator. With a judge URL
the node evaluator becomes the weakest link of the offline scorer and the LLM judge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecoalign.providers.base import ChatProvider, ProviderError
from ecoalign.runtime.services import Services
from ecoalign.settings import Settings

if TYPE_CHECKING:
    from ecoalign.providers.openai_http import OpenAIChatProvider


class ServiceError(RuntimeError):
    """A model or evaluator cannot be set up (unreachable URL, missing offline package)."""


def http_provider(settings: Settings, url: str, model: str | None, api_key: str | None) -> OpenAIChatProvider:
    """A client of the OpenAI-compatible server at ``url`` with the settings' timeout, retries and concurrency
    (no request made: ``build_provider`` checks it, lazy users find out at their first call)."""
    from ecoalign.providers.openai_http import OpenAIChatProvider

    if not model:
        raise ServiceError(f"a model name is needed for {url}")
    return OpenAIChatProvider(
        url,
        model,
        api_key=api_key,
        timeout_s=settings.model_timeout_s,
        max_retries=settings.model_max_retries,
        max_concurrency=settings.model_concurrency,
    )


def build_provider(settings: Settings, url: str | None, model: str | None, api_key: str | None) -> ChatProvider:
    if url:
        provider: ChatProvider = http_provider(settings, url, model, api_key)
    else:
        from ecoalign.providers.local_llama import local_provider

        try:
            provider = local_provider(timeout_s=settings.model_timeout_s)
        except ProviderError as exc:
            raise ServiceError(str(exc)) from None
    try:
        provider.check()
    except ProviderError as exc:
        raise ServiceError(str(exc)) from None
    return provider


def build_services(
    settings: Settings,
    *,
    model_url: str | None = None,
    model: str | None = None,
    judge_url: str | None = None,
    judge_model: str | None = None,
) -> Services:
    """The chat model (checked reachable), the scanner and the node evaluator for one process.

    ``settings.evaluator == "heuristic"`` swaps the offline scanner and scorer for the keyword lexicon of
    ``evaluators/heuristic.py`` (pipeline tests and benchmarks only: instant and deterministic, not a judge).
    """
    from ecoalign.evaluators.base import NodeEvaluator, Scanner

    provider = build_provider(
        settings, model_url or settings.model_url, model or settings.model, settings.model_api_key
    )
    from ecoalign.moderation.factory import SetupError, build_scanner

    try:
        scanner: Scanner = build_scanner(settings.evaluator)  # the one scanner factory, shared with moderation
    except SetupError as exc:
        raise ServiceError(str(exc)) from None
    evaluator: NodeEvaluator
    if settings.evaluator == "heuristic":
        from ecoalign.evaluators.heuristic import HeuristicNodeEvaluator

        evaluator = HeuristicNodeEvaluator()
    else:
        from ecoalign.evaluators.node_scorer import OfflineNodeEvaluator

        evaluator = OfflineNodeEvaluator()
    judge_url = judge_url or settings.judge_url
    if judge_url:
        from ecoalign.evaluators.combine import WeakestLinkCombiner
        from ecoalign.evaluators.judge import LLMJudge

        judge_provider = build_provider(
            settings, judge_url, judge_model or settings.judge_model, settings.judge_api_key
        )
        evaluator = WeakestLinkCombiner([evaluator, LLMJudge(judge_provider)])
    closers = [getattr(provider, "close", lambda: None)]
    return Services(provider=provider, scanner=scanner, evaluator=evaluator, closers=closers)
