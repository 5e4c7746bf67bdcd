"""``ecoalign eval`` end to end: the simulation writes results.json (per method under "methods"), results.csv and
the plots, and a bad option is a one-line error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecoalign.cli import main


def test_eval_simulate_writes_results_csv_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = main(["eval", "--simulate", "--seed", "3", "--items", "8", "--methods", "ecoalign,tot_mean,direct",
                 "--budgets", "1000,3000", "--no-progress", "-o", str(out)])
    assert code == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["simulation"] is True
    assert "SIMULATION" in doc["label"]
    for method in ("ecoalign", "tot_mean", "direct"):
        row = doc["methods"][method]
        for key in ("safety_rate", "utility_rate", "mean_tokens", "p95_tokens", "model_calls", "wall_s", "p95_wall_s"):
            assert key in row
    assert [r["budget"] for r in doc["budget_sweep"]] == [1000, 3000]
    for name in ("results.csv", "tokens_vs_safety.png", "token_distribution.png", "budget_sweep.png", "items.jsonl"):
        assert (out / name).stat().st_size > 0
    printed = capsys.readouterr().out
    assert "SIMULATION" in printed
    assert "tot_mean" in printed


def test_eval_with_a_policy_file(tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"policy": {"budget": 1500, "cost_weight": 0.2}}))
    out = tmp_path / "run"
    assert main(["eval", "--simulate", "--items", "4", "--methods", "ecoalign", "--policy", str(policy),
                 "--no-progress", "--no-plots", "-o", str(out)]) == 0
    assert json.loads((out / "results.json").read_text())["policy"]["budget"] == 1500


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--simulate", "--methods", "ecoalign,nope"], "unknown strategy 'nope'"),
        (["--simulate", "--study", "nope"], "unknown study 'nope'"),
        (["--simulate", "--policy", '{"tau": 7}'], "policy.tau out of range"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                         message: str) -> None:
    assert main(["eval", *argv, "--no-progress", "-o", str(tmp_path / "x")]) == 2
    assert message in capsys.readouterr().err


def test_eval_data_names_the_bad_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"custom_id": "a", "text": "hi", "label": "nope"}\n')
    assert main(["eval", "--data", str(data), "--no-progress", "-o", str(tmp_path / "x")]) == 2
    assert "d.jsonl:1: label must be safe or unsafe" in capsys.readouterr().err


def test_tune_on_the_simulation_beats_the_default_policy_held_back(tmp_path: Path) -> None:
    """A small search: the policy it writes meets the target on the held-back split at fewer mean tokens than the
    default policy, and ``ecoalign eval --policy`` accepts the file."""
    out = tmp_path / "tune"
    assert main(["tune", "--simulate", "--items", "40", "--trials", "6", "--target-safety", "0.95",
                 "-o", str(out)]) == 0
    report = json.loads((out / "tune.json").read_text())
    held = report["held_back"]
    assert held["tuned_meets_targets"]
    assert held["tuned"]["safety_rate"] >= 0.95
    assert held["tuned"]["mean_tokens"] < held["default"]["mean_tokens"]
    assert main(["eval", "--simulate", "--items", "4", "--methods", "ecoalign", "--policy", str(out / "policy.json"),
                 "--no-progress", "--no-plots", "-o", str(tmp_path / "e")]) == 0
    assert json.loads((tmp_path / "e" / "results.json").read_text())["policy"] == report["policy"]


def test_policy_option_reads_inline_json_a_bare_file_or_tunes_file(tmp_path: Path) -> None:
    from ecoalign.cli_errors import CliError, policy_option

    bare, wrapped = tmp_path / "bare.json", tmp_path / "wrapped.json"
    bare.write_text('{"budget": 900}')
    wrapped.write_text('{"policy": {"budget": 800}}')
    assert policy_option('{"tau": 0.4}') == {"tau": 0.4}
    assert policy_option(str(bare)) == {"budget": 900}
    assert policy_option(str(wrapped)) == {"budget": 800}
    with pytest.raises(CliError, match="neither a JSON object nor a file"):
        policy_option(str(tmp_path / "missing.json"))
