"""The LLM judge: lenient parsing, explicit fallbacks, images as image_url parts, a real HTTP round trip."""

from __future__ import annotations

import pytest

from ecoalign.content import Image, Request
from ecoalign.evaluators.base import NodeEvaluator, NodeToScore, Scanner
from ecoalign.evaluators.judge import LLMJudge
from ecoalign.evaluators.judge_parse import UnparseableVerdict, parse_verdict, to_unit
from ecoalign.providers.base import ProviderRejected, ProviderTimeout

from .fakes import ScriptedProvider

NODE = NodeToScore(Request("How do I repot a cactus?"), "answer", "Wear gloves, loosen the soil, move it to a pot.")
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)

# (reply, expected safety, expected utility) — the malformed outputs small judges really produce
BATTERY = [
    ('{"safety": 0.9, "utility": 0.8, "categories": {}, "rationale": "fine"}', 0.9, 0.8),
    ('```json\n{"safety": 0.2, "utility": 0.5}\n```', 0.2, 0.5),
    ('Here is my verdict: {"safety": 0.7, "utility": 0.6} Hope this helps! {not json}', 0.7, 0.6),
    ("{'safety': 0.4, 'utility': 0.3, 'rationale': 'single quotes'}", 0.4, 0.3),
    ('{"safety": "0.85", "utility": "0.5"}', 0.85, 0.5),
    ('{"safety": 9, "utility": 7}', 0.9, 0.7),
    ('{"safety": "80%", "utility": "7/10"}', 0.8, 0.7),
    ('{"safety": 95, "utility": 40}', 0.95, 0.4),
    ('{"safety": 0.6, "utility": 0.9,}', 0.6, 0.9),
    ("{safety: 0.3, utility: 0.2}", 0.3, 0.2),
    ('{"Safety": 1, "Utility": 0}', 1.0, 0.0),
    ('{"safe": false, "utility": 0.1}', 0.0, 0.1),
    ('{"flagged": true}', 0.0, None),
    ('{"categories": {"violence": 0.9}, "utility": 0.2}', 0.1, 0.2),
    ('{"categories": {"harassment_threatening": 0.7}}', 0.3, None),
    ('{"safety": 0.5, "utility": 0.5', 0.5, 0.5),  # truncated by max_tokens
    ("Safety: 0.25. Utility: 0.75.", 0.25, 0.75),
    ('{"safety": true, "utility": "high"}', 1.0, 1.0),
]


@pytest.mark.parametrize(("reply", "safety", "utility"), BATTERY)
def test_parse_battery(reply, safety, utility):
    verdict = parse_verdict(reply)
    assert verdict.safety == pytest.approx(safety)
    assert (verdict.utility is None) if utility is None else verdict.utility == pytest.approx(utility)


@pytest.mark.parametrize("reply", ["", "I think it is fine.", "{}", '{"rationale": "no numbers"}', "[1, 2]"])
def test_unparseable(reply):
    with pytest.raises(UnparseableVerdict):
        parse_verdict(reply)


def test_to_unit_edges():
    assert to_unit("nan") is None or 0.0 <= to_unit("nan") <= 1.0
    assert to_unit(-3) == 0.0
    assert to_unit(1000) == 1.0
    assert to_unit(None) is None


def test_judge_scores_a_node_and_counts_tokens():
    provider = ScriptedProvider(['{"safety": 0.95, "utility": 0.7, "rationale": "ok"}'])
    judge = LLMJudge(provider)
    assert isinstance(judge, NodeEvaluator)
    assert isinstance(judge, Scanner)
    score = judge.score_node(NODE)
    assert (score.safety, score.utility, score.tokens) == (0.95, 0.7, 120)
    assert score.evaluator == "judge:fake-judge"
    assert score.model == "fake-judge"
    assert score.detail["rationale"] == "ok"
    assert "<response" in provider.calls[0][1]["content"][0]["text"]


def test_unparseable_reply_falls_back_conservatively():
    score = LLMJudge(ScriptedProvider(["Sure thing!"])).score_node(NODE)
    assert score.detail["fallback"] == "unparseable"
    assert (score.safety, score.utility) == (0.0, 0.0)
    assert score.tokens == 120  # the failed call still cost tokens


def test_provider_error_raise_or_fallback():
    with pytest.raises(ProviderTimeout):
        LLMJudge(ScriptedProvider([ProviderTimeout("slow")])).score_node(NODE)
    score = LLMJudge(ScriptedProvider([ProviderTimeout("slow")]), on_error="fallback").score_node(NODE)
    assert score.detail["fallback"] == "provider-error"
    assert score.safety == 0.0
    assert score.tokens == 0
    with pytest.raises(ValueError, match="on_error must be"):
        LLMJudge(ScriptedProvider(["{}"]), on_error="ignore")


def test_images_are_sent_as_image_url_parts_and_dropped_when_rejected():
    request = Request("What does this say?", (Image(PNG),))
    provider = ScriptedProvider(['{"safety": 1, "utility": 1}'])
    score = LLMJudge(provider).scan(request)
    parts = provider.calls[0][1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url"]
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert score.detail["images_sent"] is True

    text_only = ScriptedProvider(['{"safety": 1, "utility": 1}'], text_only=True)
    LLMJudge(text_only).scan(request)
    assert [p["type"] for p in text_only.calls[0][1]["content"]] == ["text"]

    rejecting = ScriptedProvider([ProviderRejected("no images"), '{"safety": 0.9, "utility": 1}'])
    score = LLMJudge(rejecting).scan(request)
    assert score.detail["images_dropped"] is True
    assert score.safety == 0.9
    assert [p["type"] for p in rejecting.calls[1][1]["content"]] == ["text"]


def test_judge_against_the_http_emulator():
    emulator = pytest.importorskip("ecoalign.testing.emulator")
    from ecoalign.providers.openai_http import OpenAIChatProvider

    replies = ['```json\n{"safety": 0.15, "utility": 0.4, "categories": {"violence": 0.8}}\n```', "no idea"]
    with emulator.EmulatorServer(replies=replies) as emu:
        provider = OpenAIChatProvider(emu.base_url, "ecoalign-emulator", max_retries=0)
        judge = LLMJudge(provider)
        first = judge.score_node(NODE)
        second = judge.scan(Request("hello", (Image(PNG),)))
        provider_close = getattr(provider, "close", None)
        if callable(provider_close):
            provider_close()
    assert first.safety == pytest.approx(0.15)
    assert first.categories["violence"] == pytest.approx(0.8)
    assert first.tokens > 0
    assert first.model
    assert second.detail["fallback"] == "unparseable"
    assert second.tokens > 0
