"""Combining evaluators: weakest link, utility from the judge, escalation only inside the band."""

from __future__ import annotations

from ecoalign.content import Request
from ecoalign.evaluators.base import NodeToScore, Score
from ecoalign.evaluators.combine import Escalating, WeakestLinkCombiner
from ecoalign.evaluators.judge import LLMJudge

from .fakes import ScriptedProvider

NODE = NodeToScore(Request("q"), "answer", "a")


class Fixed:
    """An evaluator double that always returns the same score."""

    def __init__(self, safety: float, utility: float, name: str, **cats: float) -> None:
        self.evaluator_id = name
        self.calls = 0
        self.score = Score(safety, utility, {k.replace("_", "/"): v for k, v in cats.items()}, 0, name, name)

    def score_node(self, node):
        self.calls += 1
        return self.score

    def scan(self, request):
        self.calls += 1
        return self.score


def test_weakest_link_with_judge_utility():
    offline = Fixed(0.9, 0.3, "offline", violence=0.1)
    judge = LLMJudge(ScriptedProvider(['{"safety": 0.6, "utility": 0.8, "categories": {"hate": 0.4}}']))
    combined = WeakestLinkCombiner([offline, judge])
    score = combined.score_node(NODE)
    assert score.safety == 0.6
    assert score.utility == 0.8
    assert score.tokens == 120
    assert score.categories["violence"] == 0.1
    assert score.categories["hate"] == 0.4
    assert combined.evaluator_id == score.evaluator == "offline+judge:fake-judge"
    assert score.detail["weakest_evaluator"] == "judge:fake-judge"


def test_fallbacks_can_be_skipped():
    offline = Fixed(0.9, 0.3, "offline")
    broken = LLMJudge(ScriptedProvider(["??"]))
    assert WeakestLinkCombiner([offline, broken]).score_node(NODE).safety == 0.0
    skipped = WeakestLinkCombiner([offline, broken], skip_fallbacks=True).score_node(NODE)
    assert skipped.safety == 0.9
    assert skipped.utility == 0.3
    assert skipped.tokens == 120


def test_escalation_only_in_band():
    judge = Fixed(0.95, 0.9, "judge")
    for cheap_safety, path in ((0.99, "cheap:confident-safe"), (0.01, "cheap:confident-unsafe")):
        score = Escalating(Fixed(cheap_safety, 0.5, "cheap"), judge).score_node(NODE)
        assert score.detail["path"] == path
        assert score.safety == cheap_safety
    assert judge.calls == 0
    score = Escalating(Fixed(0.4, 0.5, "cheap"), judge).scan(Request("q"))
    assert judge.calls == 1
    assert score.detail["path"] == "escalated"
    assert score.safety == 0.95
    weakest = Escalating(Fixed(0.4, 0.5, "cheap"), judge, mode="weakest").score_node(NODE)
    assert weakest.safety == 0.4
    assert weakest.utility == 0.9


def test_escalation_keeps_the_cheap_score_when_the_judge_fails():
    judge = LLMJudge(ScriptedProvider(["not json"]))
    score = Escalating(Fixed(0.45, 0.5, "cheap"), judge).score_node(NODE)
    assert score.detail["path"] == "escalated:fallback-to-cheap"
    assert score.safety == 0.45
    assert score.tokens == 120
