"""Escalation as an economic decision: the pure rule (expected cost, Bayes, EVOI, budgets) and the moderator buying
evidence from a real HTTP judge (the emulator's moderation judge of set accuracy) only when it is worth its tokens,
with every purchase and refusal in the trace."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecoalign.content import Image, Request
from ecoalign.moderation.budget import RunBudget
from ecoalign.moderation.decisions import JUDGE, SCAN_SAFE, VALUE_BUDGET, VALUE_NOT_WORTH
from ecoalign.moderation.escalation import (
    Evidence,
    appraise,
    band_escalates,
    budget_blocked,
    calibrated_probability,
    choose,
    evoi,
    expected_cost,
    posterior,
    should_flag,
)
from ecoalign.moderation.judge import ChatModerationJudge
from ecoalign.moderation.moderator import Moderator
from ecoalign.moderation.policy import ErrorCost, ModerationPolicy
from ecoalign.providers.openai_http import OpenAIChatProvider
from ecoalign.testing.emulator import EmulatorServer, ModerationJudgeScript

from .conftest import ScriptedScanner, png_bytes

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
accuracy = st.floats(min_value=0.5, max_value=1.0, allow_nan=False)
cost = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)


# -- the pure rule ------------------------------------------------------------------------------------------------
def test_expected_cost_is_the_cheaper_error_and_the_flag_follows_it() -> None:
    assert expected_cost(0.3, 1.0, 1.0) == pytest.approx(0.3)  # pass: risk a miss of 0.3
    assert expected_cost(0.3, 10.0, 1.0) == pytest.approx(0.7)  # misses are dear: flag, risk a false flag
    assert should_flag(0.3, 10.0, 1.0)
    assert not should_flag(0.3, 1.0, 1.0)


def test_evoi_of_a_worked_example() -> None:
    # p = 0.3, a = 0.9, symmetric costs: q = 0.34, posteriors 0.794 / 0.045; after = 0.07 + 0.03 = 0.1
    assert evoi(0.3, 0.9, 1.0, 1.0) == pytest.approx(0.2)
    assert posterior(0.3, 0.9, True) == pytest.approx(0.27 / 0.34)
    assert posterior(0.3, 0.9, False) == pytest.approx(0.03 / 0.66)


@given(p=unit, a=accuracy, miss=cost, ff=cost)
def test_evoi_is_never_negative_nor_above_the_current_cost(p: float, a: float, miss: float, ff: float) -> None:
    value = evoi(p, a, miss, ff)
    assert 0.0 <= value <= expected_cost(p, miss, ff) + 1e-9


@given(p=unit, miss=cost, ff=cost)
def test_a_coin_flip_is_worth_nothing_and_certainty_needs_no_evidence(p: float, miss: float, ff: float) -> None:
    assert evoi(p, 0.5, miss, ff) == pytest.approx(0.0, abs=1e-9)
    assert evoi(0.0, 0.9, miss, ff) == pytest.approx(0.0, abs=1e-9)
    assert evoi(1.0, 0.9, miss, ff) == pytest.approx(0.0, abs=1e-9)


@given(p=unit, lo=accuracy, hi=accuracy)
def test_better_evidence_is_worth_at_least_as_much(p: float, lo: float, hi: float) -> None:
    lo, hi = min(lo, hi), max(lo, hi)
    assert evoi(p, hi, 1.0, 1.0) >= evoi(p, lo, 1.0, 1.0) - 1e-9


def test_appraise_prices_tokens_and_respects_both_budgets() -> None:
    text, images = Evidence("judge_text", 300, 0.85), Evidence("judge_images", 1500, 0.9)
    # at p = 0.5 text evidence is worth 0.35; at 0.1 per 1000 tokens it costs 0.03, images 0.15 for 0.4
    rows = appraise(0.5, 1.0, 1.0, (text, images), token_price=0.1, item_left=2000, run_left=None)
    assert [round(r.evoi, 3) for r in rows] == [0.35, 0.4]
    assert [round(r.token_cost, 3) for r in rows] == [0.03, 0.15]
    assert choose(rows) is rows[0]  # 0.32 net beats 0.25
    rows = appraise(0.5, 1.0, 1.0, (text, images), token_price=0.1, item_left=1000, run_left=None)
    assert not rows[1].affordable
    assert "item budget" in rows[1].reason
    rows = appraise(0.5, 1.0, 1.0, (text, images), token_price=0.1, item_left=2000, run_left=200)
    assert choose(rows) is None
    assert budget_blocked(rows)
    assert all("run budget" in r.reason for r in rows)
    rows = appraise(0.02, 1.0, 1.0, (text, images), token_price=0.1, item_left=2000, run_left=None)
    assert choose(rows) is None
    assert not budget_blocked(rows)


def test_the_band_baseline_and_the_calibration_floor() -> None:
    assert band_escalates(0.5, 0.1, 0.9)
    assert not band_escalates(0.9, 0.1, 0.9)
    assert not band_escalates(0.1, 0.1, 0.9)
    assert calibrated_probability(1.0) == pytest.approx(0.001)
    assert calibrated_probability(0.25) == pytest.approx(0.75)


# -- the moderator over a real HTTP judge ---------------------------------------------------------------------------
GOLD = {"MAYBE harmful thing": True, "MAYBE harmless thing": False, "SAFE hello": False}


def _gold(content: str, images: tuple[str, ...]) -> bool | None:
    for text, label in GOLD.items():
        if f"Text: {text}" in content:
            return label
    return None


@pytest.fixture
def script() -> ModerationJudgeScript:
    return ModerationJudgeScript(_gold, accuracy_text=1.0, accuracy_images=1.0)


@pytest.fixture
def value_judge(script: ModerationJudgeScript) -> Iterator[tuple[ChatModerationJudge, EmulatorServer]]:
    with EmulatorServer(reply_fn=script, model="judge-emu") as emu:
        provider = OpenAIChatProvider(emu.base_url, "judge-emu", max_retries=0, timeout_s=10.0)
        yield ChatModerationJudge(provider), emu
        provider.close()


def test_value_escalation_buys_a_judge_call_only_where_it_is_worth_its_tokens(
    scanner: ScriptedScanner, value_judge: tuple[ChatModerationJudge, EmulatorServer]
) -> None:
    judge, emu = value_judge
    policy = ModerationPolicy(escalation="value", token_price=0.1, policy_id="pol_x", policy_version=3)
    moderator = Moderator(scanner, judge=judge, policy=policy)
    sure, harmful, harmless = moderator.moderate_many(
        [Request("SAFE hello"), Request("MAYBE harmful thing"), Request("MAYBE harmless thing")]
    )
    assert sure.decision == VALUE_NOT_WORTH
    assert sure.tokens == 0
    assert not sure.flagged
    step = sure.trace["escalation"]["steps"][0]
    assert step["p"] == pytest.approx(0.01)
    assert [o["evidence"] for o in step["options"]] == ["judge_text"]
    assert step["options"][0]["bought"] is False
    assert step["options"][0]["evoi"] < step["options"][0]["token_cost"]
    for result, flagged in ((harmful, True), (harmless, False)):
        assert result.decision == JUDGE
        assert result.flagged is flagged
        assert result.tokens > 0
        esc = result.trace["escalation"]
        first = esc["steps"][0]["options"][0]
        assert first["bought"] is True
        assert first["evoi"] > first["token_cost"]
        assert esc["calls"][0]["evidence"] == "judge_text"
        assert esc["calls"][0]["spent"] == result.tokens
        assert esc["steps"][-1]["options"][0]["evidence"] == "second_judge"  # appraised, and not worth it
        assert esc["steps"][-1]["options"][0]["bought"] is False
        assert result.ecoalign["policy"] == {"id": "pol_x", "version": 3}
        assert result.ecoalign["escalation"] == "value"
    assert emu.stats["chat_requests"] == 2


def test_value_escalation_chooses_the_images_only_when_the_extra_accuracy_pays_for_them(
    scanner: ScriptedScanner, value_judge: tuple[ChatModerationJudge, EmulatorServer]
) -> None:
    judge, emu = value_judge
    item = Request("MAYBE harmful thing", images=(Image(png_bytes()),))
    cheap = ModerationPolicy(escalation="value", token_price=0.1)
    result = Moderator(scanner, judge=judge, policy=cheap).moderate(item)
    options = {o["evidence"]: o for o in result.trace["escalation"]["steps"][0]["options"]}
    assert set(options) == {"judge_text", "judge_images"}
    assert options["judge_text"]["bought"]
    assert options["judge_images"]["tokens"] > options["judge_text"]["tokens"] + 1000
    assert emu.state.bodies[-1]["messages"][1]["content"][-1]["type"] == "text"  # no image part was sent
    accurate = ModerationPolicy(
        escalation="value", token_price=0.01, evidence_accuracy={"judge_text": 0.6, "judge_images": 0.99}
    )
    result = Moderator(scanner, judge=judge, policy=accurate).moderate(item)
    assert result.trace["escalation"]["calls"][0]["evidence"] == "judge_images"
    assert emu.state.bodies[-1]["messages"][1]["content"][-1]["type"] == "image_url"


def test_a_dear_miss_buys_a_second_opinion_and_a_small_budget_stops_it(
    scanner: ScriptedScanner, value_judge: tuple[ChatModerationJudge, EmulatorServer]
) -> None:
    judge, _emu = value_judge
    # a miss costs 5 false flags: after one "harmless" verdict p = 0.15 is just under the flag line (1/6), where a
    # second opinion is worth far more than its tokens
    dear = ModerationPolicy(escalation="value", token_price=0.05, costs={"violence": ErrorCost(miss=5.0)})
    result = Moderator(scanner, judge=judge, policy=dear).moderate(Request("MAYBE harmless thing"))
    calls = result.trace["escalation"]["calls"]
    assert [c["evidence"] for c in calls] == ["judge_text", "second_judge"]
    assert [c["seed"] for c in calls] == [0, 1]
    assert result.tokens == sum(c["spent"] for c in calls)
    assert result.trace["escalation"]["lead_category"] == "violence"
    tight = ModerationPolicy(escalation="value", token_price=0.1)
    starved = Moderator(scanner, judge=judge, policy=tight, run_budget=RunBudget(100))
    result = starved.moderate(Request("MAYBE harmful thing"))
    assert result.decision == VALUE_BUDGET
    assert result.tokens == 0
    assert "run budget" in result.trace["escalation"]["steps"][0]["options"][0]["reason"]


def test_the_band_stays_selectable(
    scanner: ScriptedScanner, value_judge: tuple[ChatModerationJudge, EmulatorServer]
) -> None:
    judge, _ = value_judge
    band = Moderator(scanner, judge=judge, policy=ModerationPolicy(escalation="band"))
    sure, unsure = band.moderate_many([Request("SAFE hello"), Request("MAYBE harmful thing")])
    assert sure.decision == SCAN_SAFE
    assert unsure.decision == JUDGE
    assert unsure.flagged
    assert unsure.trace["escalation"]["mode"] == "band"
    assert unsure.ecoalign["escalation"] == "band"


def test_the_emulator_judge_is_right_at_its_set_rate() -> None:
    script = ModerationJudgeScript(lambda c, _: c.endswith("1"), accuracy_text=0.8)
    verdicts = [
        json.loads(script({"messages": [{"role": "user", "content": f"item {i}"}], "seed": 0}))["flagged"]
        for i in range(2000)
    ]
    right = sum(v == (f"item {i}".endswith("1")) for i, v in enumerate(verdicts))
    assert 0.77 < right / 2000 < 0.83
