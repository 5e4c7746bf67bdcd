"""The scanner and the judge, built from settings in one place for every process (CLI, API, workers).

``build_scanner`` is the one scanner factory keyed on ``ECOALIGN_EVALUATOR``; ``ModerationEngine`` holds a process's
scanner and builds its optional judge once, on first use, and hands out a cheap ``Moderator`` per request (its
policy and budget are the request's). The process's composition root (``ecoalign.runtime.root``) builds both, so
the moderation of a process and the scans of its jobs share one scanner and one set of models.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ecoalign.evaluators.base import Scanner
from ecoalign.moderation.budget import RunBudget
from ecoalign.moderation.judge import ChatModerationJudge, ModerationJudge
from ecoalign.moderation.moderator import Moderator
from ecoalign.moderation.policy import ModerationPolicy

if TYPE_CHECKING:
    from ecoalign.evaluators.ocr import OcrEngine
    from ecoalign.evaluators.safety_model import SafetyModel
    from ecoalign.providers.openai_http import OpenAIChatProvider
    from ecoalign.settings import Settings

EVALUATORS = ("offline", "heuristic")


class SetupError(RuntimeError):
    """The scanner or judge the settings name cannot be built (unknown evaluator, offline package missing, a judge
    URL without a model)."""


def build_scanner(
    name: str, *, safety_model: Callable[[], SafetyModel], ocr: Callable[[], OcrEngine]
) -> Scanner:
    """The scanner ``ECOALIGN_EVALUATOR`` names: ``offline`` (OCR + MiniLM) or ``heuristic`` (the keyword lexicon:
    instant and deterministic, for tests and benchmarks). The offline scanner loads its models through
    ``safety_model()`` and ``ocr()`` on first use (the root's getters: one model per process)."""
    if name == "heuristic":
        from ecoalign.evaluators.heuristic import HeuristicScanner

        return HeuristicScanner()
    if name == "offline":
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # the loader's bar would garble our stderr
        try:
            from ecoalign.evaluators.scanner import OfflineScanner
        except ImportError as exc:
            raise SetupError(f"the offline scanner cannot load ({exc}); install ecoalign[offline]") from None
        return OfflineScanner(safety_model, ocr)
    raise SetupError(f"unknown evaluator {name!r}: expected offline or heuristic")


def judge_provider(settings: Settings, url: str, model: str | None, *, concurrency: int) -> OpenAIChatProvider:
    """A client of the judge's OpenAI-compatible server with the settings' key, timeout and retries (no request
    made: the caller checks it or finds out at the first call)."""
    from ecoalign.providers.openai_http import client_for

    if not model:
        raise SetupError("ECOALIGN_JUDGE_URL needs ECOALIGN_JUDGE_MODEL")
    return client_for(settings, url, model, api_key=settings.judge_api_key, concurrency=concurrency)


class ModerationEngine:
    """The scanner (``ECOALIGN_EVALUATOR``: offline or heuristic) and the optional LLM judge
    (``ECOALIGN_JUDGE_URL`` / ``ECOALIGN_JUDGE_MODEL``), built on first use.

    Thread-safe; one per process (its composition root's). ``scanner()`` gives the process's scanner (called on
    first use: the root's getter, or a scanner class in tests).
    """

    def __init__(self, settings: Settings, scanner: Callable[[], Scanner]) -> None:
        self.settings = settings
        self._load_scanner = scanner
        self._lock = threading.Lock()
        self._scanner: Scanner | None = None
        self._judge: ModerationJudge | None = None
        self._judge_built = False
        self._closers: list[Callable[[], Any]] = []

    def scanner(self) -> Scanner:
        with self._lock:
            if self._scanner is None:
                self._scanner = self._load_scanner()
            return self._scanner

    def judge(self) -> ModerationJudge | None:
        with self._lock:
            if not self._judge_built:
                s = self.settings
                if s.judge_url:
                    provider = judge_provider(s, s.judge_url, s.judge_model, concurrency=s.model_concurrency)
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

