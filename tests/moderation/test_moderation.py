"""The moderator: OpenAI result shape, zero-token confident decisions, escalation to a real HTTP judge within the
per-item and per-run budgets, and the thread-safe run budget."""

from __future__ import annotations

import random
import threading

import pytest

from ecoalign.categories import MODERATION_CATEGORIES
from ecoalign.content import Image, Request
from ecoalign.moderation.budget import RunBudget
from ecoalign.moderation.decisions import (
    JUDGE,
    SCAN_ITEM_BUDGET,
    SCAN_JUDGE_FAILED,
    SCAN_NO_JUDGE,
    SCAN_RUN_BUDGET,
    SCAN_SAFE,
    SCAN_UNSAFE,
)
from ecoalign.moderation.judge import ChatModerationJudge, parse_reply
from ecoalign.moderation.moderator import Moderator
from ecoalign.moderation.policy import ModerationPolicy, PolicyError
from ecoalign.moderation.result import moderation_response
from ecoalign.providers.openai_http import OpenAIChatProvider
from ecoalign.testing.emulator import EmulatorServer

from .conftest import ScriptedScanner, png_bytes


def test_result_has_every_openai_key(scanner: ScriptedScanner) -> None:
    moderator = Moderator(scanner)
    request = Request("UNSAFE text", images=(Image(png_bytes()),))
    result = moderator.moderate(request)
    body = moderation_response([result], moderator.model_id)
    assert set(body) == {"id", "model", "results"}
    out = body["results"][0]
    assert set(out) == {"flagged", "categories", "category_scores", "category_applied_input_types", "ecoalign"}
    for key in ("categories", "category_scores", "category_applied_input_types"):
        assert list(out[key]) == list(MODERATION_CATEGORIES), key
    assert all(isinstance(v, bool) for v in out["categories"].values())
    assert all(0.0 <= v <= 1.0 for v in out["category_scores"].values())
    assert all(set(v) <= {"text", "image"} for v in out["category_applied_input_types"].values())
    assert out["flagged"] is True
    assert out["categories"]["violence"] is True
    assert out["category_applied_input_types"]["violence"] == ["text"]
    ext = out["ecoalign"]
    assert ext["decision"] == SCAN_UNSAFE
    assert ext["weakest_segment"] == {"kind": "text", "index": 0, "excerpt": "UNSAFE text", "safety": 0.02}
    assert ext["tokens"] == 0
    assert ext["evaluators"] == ["scripted@1"]
    assert len(ext["trace_id"]) == 32
    # the trace keeps what the result does not: every segment, the thresholds
    assert [s["kind"] for s in result.trace["scan"]["segments"]] == ["text", "image"]
    assert result.trace["policy"]["hi"] == ModerationPolicy().hi


def test_flagged_iff_some_category(scanner: ScriptedScanner) -> None:
    moderator = Moderator(scanner)
    for text in ("UNSAFE", "SAFE", "MAYBE", "plain"):
        result = moderator.moderate(Request(text))
        assert result.flagged == any(result.categories.values()), text


def test_confident_items_cost_zero_tokens(
    scanner: ScriptedScanner, judge: ChatModerationJudge, emulator: EmulatorServer
) -> None:
    moderator = Moderator(scanner, judge=judge)
    results = moderator.moderate_many([Request("SAFE hello"), Request("UNSAFE thing"), Request("plain text")])
    assert [r.decision for r in results] == [SCAN_SAFE, SCAN_UNSAFE, SCAN_SAFE]
    assert [r.flagged for r in results] == [False, True, False]
    assert all(r.tokens == 0 for r in results)
    assert emulator.stats["chat_requests"] == 0
    assert scanner.calls == 1  # one batched scan for the whole list


def test_uncertain_items_escalate_to_the_judge_over_http(
    scanner: ScriptedScanner, judge: ChatModerationJudge, emulator: EmulatorServer
) -> None:
    policy = ModerationPolicy(item_budget=1500)
    moderator = Moderator(scanner, judge=judge, policy=policy, run_budget=RunBudget(100_000))
    harmful, benign = moderator.moderate_many([Request("MAYBE HARMFUL request"), Request("MAYBE fine request")])
    assert emulator.stats["chat_requests"] == 2
    assert harmful.decision == JUDGE
    assert harmful.flagged is True
    assert harmful.categories["illicit"] is True
    assert benign.decision == JUDGE
    assert benign.flagged is False
    assert not any(benign.categories.values())
    for result in (harmful, benign):
        assert 0 < result.tokens <= policy.item_budget
        assert result.ecoalign["evaluators"] == ["scripted@1", "llm-judge:judge-emu"]
        esc = result.trace["escalation"]
        assert esc["spent"] == result.tokens <= esc["reserved"]
        assert esc["raw"].startswith("{")
        assert esc["usage"]["prompt_tokens"] > 0
        assert esc["prompt"][0]["role"] == "system"
    assert moderator.run_budget.snapshot().spent == harmful.tokens + benign.tokens
    # what the judge was shown: the text between content tags, temperature 0
    sent = list(emulator.state.bodies)
    assert all(b["temperature"] == 0.0 for b in sent)
    assert any("<content>" in str(b["messages"][1]["content"]) for b in sent)


def test_the_judge_sees_images_and_their_ocr_text(
    scanner: ScriptedScanner, judge: ChatModerationJudge, emulator: EmulatorServer
) -> None:
    moderator = Moderator(scanner, judge=judge, policy=ModerationPolicy(item_budget=4000))
    result = moderator.moderate(Request("MAYBE look", images=(Image(png_bytes()),)))
    assert result.decision == JUDGE
    parts = emulator.state.bodies[-1]["messages"][1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url"]
    assert "Text read from image 1:" in parts[0]["text"]
    assert result.category_applied_input_types["illicit"] == []  # the judge cleared it: no category scored
    # the trace stores the prompt without the image bytes
    assert result.trace["escalation"]["prompt"][1]["content"][1]["image_url"]["url"].startswith("sha256:")


def test_item_budget_too_small_decides_by_scan(
    scanner: ScriptedScanner, judge: ChatModerationJudge, emulator: EmulatorServer
) -> None:
    moderator = Moderator(scanner, judge=judge, policy=ModerationPolicy(item_budget=100))
    result = moderator.moderate(Request("MAYBE HARMFUL"))
    assert result.decision == SCAN_ITEM_BUDGET
    assert result.tokens == 0
    assert result.flagged is False  # 0.5 is not below tau = 0.5
    assert "item budget" in result.ecoalign["note"]
    assert emulator.stats["chat_requests"] == 0


def test_run_budget_stops_escalation(
    scanner: ScriptedScanner, judge: ChatModerationJudge, emulator: EmulatorServer
) -> None:
    policy = ModerationPolicy(judge_max_tokens=64)
    probe = Moderator(scanner, judge=judge, policy=policy)
    estimate = judge.estimate_prompt_tokens(Request("MAYBE item 0"), scanner.scan(Request("MAYBE item 0")), policy) + 64
    budget = RunBudget(estimate * 3 + estimate // 2)  # room for three reservations, not four
    moderator = Moderator(scanner, judge=judge, policy=policy, run_budget=budget)
    results = moderator.moderate_many([Request(f"MAYBE item {i}") for i in range(8)])
    judged = [r for r in results if r.decision == JUDGE]
    stopped = [r for r in results if r.decision == SCAN_RUN_BUDGET]
    assert len(judged) >= 3
    assert len(judged) + len(stopped) == 8
    assert stopped
    assert all(r.tokens == 0 and "run budget exhausted" in r.ecoalign["note"] for r in stopped)
    snap = budget.snapshot()
    assert snap.spent == sum(r.tokens for r in judged) <= snap.total
    assert snap.reserved == 0
    assert emulator.stats["chat_requests"] == len(judged)
    assert probe.run_budget.snapshot().total is None  # the default is unlimited


def test_judge_failure_falls_back_to_the_scan(scanner: ScriptedScanner) -> None:
    with EmulatorServer(replies=["not json at all"]) as emu:
        provider = OpenAIChatProvider(emu.base_url, "m", max_retries=0, timeout_s=10)
        moderator = Moderator(scanner, judge=ChatModerationJudge(provider), run_budget=RunBudget(10_000))
        result = moderator.moderate(Request("MAYBE x"))
        provider.close()
    assert result.decision == SCAN_JUDGE_FAILED
    assert result.tokens > 0  # the unusable reply was still paid for
    assert moderator.run_budget.snapshot().spent == result.tokens
    assert result.trace["escalation"]["raw"] == "not json at all"
    with EmulatorServer(fail_first_n={"500": 5}) as emu:
        provider = OpenAIChatProvider(emu.base_url, "m", max_retries=0, timeout_s=10)
        moderator = Moderator(scanner, judge=ChatModerationJudge(provider), run_budget=RunBudget(10_000))
        result = moderator.moderate(Request("MAYBE x"))
        provider.close()
    assert result.decision == SCAN_JUDGE_FAILED
    assert result.tokens == 0
    assert moderator.run_budget.snapshot().reserved == 0


def test_no_judge_decides_uncertain_items_by_tau(scanner: ScriptedScanner) -> None:
    moderator = Moderator(scanner, policy=ModerationPolicy(tau=0.6))
    result = moderator.moderate(Request("MAYBE"))
    assert result.decision == SCAN_NO_JUDGE
    assert result.flagged is True


def test_run_budget_is_thread_safe() -> None:
    budget = RunBudget(10_000)
    errors: list[str] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(300):
            want = rng.randint(1, 200)
            rid = budget.reserve(want)
            snap = budget.snapshot()
            if snap.spent + snap.reserved > 10_000:
                errors.append(f"over budget: {snap}")
            if rid is not None:
                budget.settle(rid, rng.randint(0, want))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = budget.snapshot()
    assert errors == []
    assert snap.reserved == 0
    assert snap.spent <= 10_000
    assert snap.overrun == 0


def test_parse_reply_reads_what_real_models_write() -> None:
    safety, categories, _ = parse_reply('```json\n{"flagged": true, "categories": {"hate": 0.8, "bogus": 1}}\n```')
    assert safety == 0.0
    assert categories == {**dict.fromkeys(MODERATION_CATEGORIES, 0.0), "hate": 0.8}
    assert parse_reply('{"categories": ["violence"]}')[0] < 0.5  # categories alone flag
    assert parse_reply('{"flagged": false}')[0] == 1.0
    assert parse_reply('{"flagged": "yes"}')[0] == 0.0  # a string for a boolean
    assert parse_reply("{'flagged': True, 'rationale': 'x',}")[0] == 0.0  # a Python literal, trailing comma
    assert parse_reply('{"flagged": false, "rationale": "fine"} I hope this helps.')[2] == "fine"  # prose after
    assert parse_reply('{"categories": {"self_harm": 8}}')[1]["self-harm"] == 0.8  # 0..10 scale, a loose key
    for bad in ("", "no", "[1]", "{oops}", "I cannot say."):
        with pytest.raises(ValueError, match="no JSON object and no 'safety'"):
            parse_reply(bad)


def test_policy_validation() -> None:
    with pytest.raises(PolicyError):
        ModerationPolicy(lo=0.6, tau=0.5)
    with pytest.raises(PolicyError):
        ModerationPolicy.from_dict({"nope": 1})
    assert ModerationPolicy.from_dict({"hi": 0.95}).hi == 0.95


def _safety_score_reply(body: dict) -> str:
    """The emulator answering in the safety-score form (the project's node judge's): safety 0..1, categories."""
    from ecoalign.testing.emulator import last_user_text

    if "HARMFUL" in last_user_text(body.get("messages") or []):
        return '{"safety": 0.05, "utility": 1.0, "categories": {"violence": 0.9}, "rationale": "harm"}'
    return '{"safety": 0.97, "utility": 1.0, "categories": {}, "rationale": "fine"}'


def test_a_reply_in_the_safety_score_form_is_read_too(scanner: ScriptedScanner) -> None:
    with EmulatorServer(reply_fn=_safety_score_reply, model="llm") as emu:
        provider = OpenAIChatProvider(emu.base_url, "llm", max_retries=0, timeout_s=10)
        moderator = Moderator(
            scanner,
            judge=ChatModerationJudge(provider),
            policy=ModerationPolicy(item_budget=3000, judge_max_tokens=128),
            run_budget=RunBudget(50_000),
        )
        harmful, benign = moderator.moderate_many(
            [Request("MAYBE HARMFUL", images=(Image(png_bytes()),)), Request("MAYBE fine")]
        )
        sent = list(emu.state.bodies)
        provider.close()
    assert harmful.decision == benign.decision == JUDGE
    assert harmful.flagged
    assert harmful.categories["violence"]
    assert not benign.flagged
    assert harmful.ecoalign["evaluators"] == ["scripted@1", "llm-judge:llm"]
    assert all(b["max_tokens"] == 128 for b in sent)  # the item budget's cap
    assert any("Text read from image 1:" in str(b["messages"]) for b in sent)  # OCR text reaches the judge
    esc = harmful.trace["escalation"]
    assert esc["spent"] == harmful.tokens <= esc["reserved"]
    assert esc["safety"] == 0.05
    assert moderator.run_budget.snapshot().spent == harmful.tokens + benign.tokens


def test_the_judges_tau_is_the_policys(scanner: ScriptedScanner) -> None:
    """A verdict's safety flags the item below the policy's ``tau``, not a threshold of the judge's own."""
    with EmulatorServer(replies=['{"safety": 0.6, "categories": {}}'] * 2, model="llm") as emu:
        provider = OpenAIChatProvider(emu.base_url, "llm", max_retries=0, timeout_s=10)
        strict = Moderator(scanner, judge=ChatModerationJudge(provider), policy=ModerationPolicy(tau=0.7))
        lenient = Moderator(scanner, judge=ChatModerationJudge(provider), policy=ModerationPolicy(tau=0.5))
        flagged, passed = strict.moderate(Request("MAYBE x")), lenient.moderate(Request("MAYBE x"))
        provider.close()
    assert flagged.decision == passed.decision == JUDGE
    assert flagged.flagged
    assert not passed.flagged


def test_an_unusable_judge_reply_is_a_failed_call(scanner: ScriptedScanner) -> None:
    with EmulatorServer(replies=["I cannot say."]) as emu:
        provider = OpenAIChatProvider(emu.base_url, "llm", max_retries=0, timeout_s=10)
        moderator = Moderator(scanner, judge=ChatModerationJudge(provider), run_budget=RunBudget(50_000))
        result = moderator.moderate(Request("MAYBE x"))
        provider.close()
    assert result.decision == SCAN_JUDGE_FAILED
    assert result.tokens > 0
    assert "unusable judge reply" in result.ecoalign["note"]
    assert result.trace["escalation"]["raw"] == "I cannot say."
