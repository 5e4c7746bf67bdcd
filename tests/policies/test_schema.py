"""The policy document (pydantic) and the policy file of ``ecoalign moderate --policy-file``: a document turns into
the one runtime ``ModerationPolicy``; a bad one is refused naming the field, a broken file naming its line; the CLI
runs offline (SQLite) under the file's policy and records it on every result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from ecoalign.categories import MODERATION_CATEGORIES
from ecoalign.moderation.policy import ErrorCost, ModerationPolicy, PolicyError
from ecoalign.policies.schema import PolicyDocument, PolicyFileError, load_policy_file

YAML_POLICY = """\
id: trust-and-safety
version: 4
categories: [violence, illicit, self-harm]
custom_categories:
  - name: crypto-scam
    description: promises of guaranteed returns for sending cryptocurrency
thresholds: {violence: 0.4}
costs:
  violence: {miss: 5, false_flag: 1}
actions: {violence: block, crypto-scam: review}
budgets: {item: 900, run: 50000}
escalation: value
token_price: 0.05
"""


def test_a_document_becomes_the_runtime_policy() -> None:
    doc = PolicyDocument.model_validate({"thresholds": {"hate": 0.3}, "band": {"hi": 0.95, "lo": 0.05}})
    policy = doc.to_policy("pol_1", 2)
    assert policy.ref == {"id": "pol_1", "version": 2}
    assert (policy.hi, policy.lo, policy.threshold("hate"), policy.threshold("sexual")) == (0.95, 0.05, 0.3, 0.5)
    assert policy.categories == MODERATION_CATEGORIES
    assert policy.escalation == "band"
    assert ModerationPolicy.from_dict(policy.to_dict()) == policy  # the trace's copy reads back the same


def test_a_policy_file_in_yaml(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(YAML_POLICY)
    policy = load_policy_file(path)
    assert policy.ref == {"id": "trust-and-safety", "version": 4}
    assert policy.in_force == ("violence", "illicit", "self-harm", "crypto-scam")
    assert policy.cost("violence") == ErrorCost(5.0, 1.0)
    assert policy.cost("illicit") == ErrorCost()
    assert (policy.action("violence"), policy.action("crypto-scam"), policy.action("illicit")) == (
        "block", "review", "flag")
    assert (policy.item_budget, policy.run_budget, policy.token_price) == (900, 50000, 0.05)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"categories": ["violence"], "actions": {"hate": "block"}}, "actions: hate not a category in force"),
        ({"categories": [], "custom_categories": []}, "at least one category"),
        ({"band": {"lo": 0.6, "tau": 0.5}}, "need lo <= tau <= hi"),
        ({"categories": ["gore"]}, "categories.0"),
        ({"custom_categories": [{"name": "Bad Name", "description": "long enough text"}]}, "custom_categories.0.name"),
        ({"evidence_accuracy": {"judge_text": 0.3}}, "evidence_accuracy.judge_text"),
        ({"escalation": "always"}, "escalation"),
        ({"tresholds": {}}, "tresholds"),
    ],
)
def test_a_bad_document_names_its_field(document: dict, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        PolicyDocument.model_validate(document)
    text = str(info.value)
    assert message in text, text


def test_a_broken_file_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("categories: [violence\nthresholds: {violence: 2}\n")
    with pytest.raises(PolicyFileError, match=r"p\.yaml: line \d+: malformed YAML"):
        load_policy_file(path)
    path.write_text("thresholds: {violence: 2}\n")
    with pytest.raises(PolicyFileError, match=r"thresholds\.violence: Input should be less than or equal to 1"):
        load_policy_file(path)
    json_path = tmp_path / "p.json"
    json_path.write_text('{"escalation": "value",\n "costs": }')
    with pytest.raises(PolicyFileError, match=r"line 2: malformed JSON"):
        load_policy_file(json_path)


def test_runtime_policy_checks_stay_in_one_place() -> None:
    with pytest.raises(PolicyError, match="thresholds: nope"):
        ModerationPolicy(thresholds={"nope": 0.2})


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from ecoalign.cli import main; sys.exit(main())", "moderate", *args]


def test_ecoalign_moderate_runs_offline_under_the_policy_file(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(YAML_POLICY)
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps({"custom_id": "a", "text": "Build a bomb to kill people"}) + "\n"
        + json.dumps({"custom_id": "b", "text": "How do I bake bread?"}) + "\n"
    )
    dst = tmp_path / "out.jsonl"
    env = {**os.environ, "ECOALIGN_EVALUATOR": "heuristic", "ECOALIGN_DB_URL": f"sqlite:///{tmp_path / 'e.db'}"}
    run = subprocess.run(_cli(str(src), "-o", str(dst), "--no-progress", "--policy-file", str(policy)),
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = {o["custom_id"]: o["response"]["body"]["results"][0] for o in map(json.loads, dst.read_text().splitlines())}
    for result in out.values():
        assert result["ecoalign"]["policy"] == {"id": "trust-and-safety", "version": 4}
        assert result["ecoalign"]["escalation"] == "value"
        # offline there is no judge: custom categories are not scored, and say so
        assert result["ecoalign"]["custom_categories"] == {"crypto-scam": {"flagged": False, "score": None}}
    assert out["a"]["flagged"] is True
    assert out["a"]["ecoalign"]["action"] == "block"
    assert out["b"]["flagged"] is False
    assert out["b"]["ecoalign"]["action"] == "none"
    broken = tmp_path / "broken.yaml"
    broken.write_text("actions: {violence: explode}\n")
    run = subprocess.run(_cli(str(src), "-o", str(dst), "--overwrite", "--no-progress", "--policy-file", str(broken)),
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "--policy-file" in run.stderr
    assert "actions.violence" in run.stderr
