"""Builds the adapters of a job step from settings; the process's composition root (``ecoalign.runtime.root``) calls
it once and keeps what it built.

Offline defaults: the local llama.cpp server with the registry's Gemma 3 270M *base* model (a real
OpenAI-compatible server; poor text), the OCR + MiniLM scanner and the offline node evaluator. With a judge URL
the node evaluator becomes the weakest link of the offline scorer and the LLM judge.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from ecoalign.evaluators.base import NodeEvaluator, Scanner
from ecoalign.providers.base import ChatProvider, ProviderError
from ecoalign.runtime.services import Services
from ecoalign.settings import Settings

if TYPE_CHECKING:
    from ecoalign.providers.local_llama import LlamaServer
    from ecoalign.providers.openai_http import OpenAIChatProvider


class ServiceError(RuntimeError):
    """A model or evaluator cannot be set up (unreachable URL, missing offline package)."""


def http_provider(settings: Settings, url: str, model: str | None, api_key: str | None) -> OpenAIChatProvider:
    """A client of the OpenAI-compatible server at ``url`` with the settings' timeout, retries and concurrency
    (no request made: ``build_provider`` checks it, lazy users find out at their first call)."""
    from ecoalign.providers.openai_http import client_for

    if not model:
        raise ServiceError(f"a model name is needed for {url}")
    return client_for(settings, url, model, api_key=api_key, concurrency=settings.model_concurrency)


def build_provider(
    settings: Settings,
    url: str | None,
    model: str | None,
    api_key: str | None,
    local_server: Callable[[], LlamaServer],
) -> ChatProvider:
    """The model at ``url``, else the local server ``local_server()`` gives (the root's), checked reachable."""
    if url:
        provider: ChatProvider = http_provider(settings, url, model, api_key)
    else:
        from ecoalign.providers.local_llama import local_provider

        try:
            provider = local_provider(local_server(), timeout_s=settings.model_timeout_s)
        except ProviderError as exc:
            raise ServiceError(str(exc)) from None
    try:
        provider.check()
    except ProviderError as exc:
        raise ServiceError(str(exc)) from None
    return provider


def build_services(
    settings: Settings, provider: ChatProvider, scanner: Scanner, judge_provider: ChatProvider | None = None
) -> Services:
    """The chat model, the scanner and the node evaluator of a job step (the root calls it once per process).

    ``settings.evaluator == "heuristic"`` swaps the offline scorer for the keyword lexicon of
    ``evaluators/heuristic.py`` (pipeline tests and benchmarks only: instant and deterministic, not a judge). With
    a ``judge_provider`` the node evaluator is the weakest link of that scorer and the LLM judge.
    """
    evaluator: NodeEvaluator
    if settings.evaluator == "heuristic":
        from ecoalign.evaluators.heuristic import HeuristicNodeEvaluator

        evaluator = HeuristicNodeEvaluator()
    else:
        from ecoalign.evaluators.node_scorer import OfflineNodeEvaluator
        from ecoalign.evaluators.scanner import OfflineScanner

        evaluator = OfflineNodeEvaluator(cast(OfflineScanner, scanner))  # the process's one scanner
    if judge_provider is not None:
        from ecoalign.evaluators.combine import WeakestLinkCombiner
        from ecoalign.evaluators.judge import LLMJudge

        evaluator = WeakestLinkCombiner([evaluator, LLMJudge(judge_provider)])
    closers = [getattr(provider, "close", lambda: None)]
    return Services(provider=provider, scanner=scanner, evaluator=evaluator, closers=closers)
