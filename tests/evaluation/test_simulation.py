"""The simulation's must-shows at a small size (the full study is ``benchmarks/evaluation_study.py``), its
reproducibility, and that the in-process simulated model counts usage as the emulator (a real HTTP server) does."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecoalign.engine.policy import Policy
from ecoalign.evaluation.methods import ALL_METHODS
from ecoalign.evaluation.metrics import without_timing
from ecoalign.evaluation.session import Evaluation, simulate, store
from ecoalign.evaluation.simulation import SimulatedModel, SimulatedWorld, SimulationConfig
from ecoalign.evaluation.studies import STUDIES

ITEMS = 30


@pytest.fixture(scope="module")
def defaults(tmp_path_factory: pytest.TempPathFactory) -> Evaluation:
    return simulate(SimulationConfig(items=ITEMS), ALL_METHODS, Policy(), tmp_path_factory.mktemp("sim"))


def test_ecoalign_is_at_least_as_safe_as_tot_mean_at_under_013x_its_tokens(defaults: Evaluation) -> None:
    eco, tot = defaults.table["ecoalign"], defaults.table["tot_mean"]
    assert eco["safety_rate"] >= tot["safety_rate"]
    assert eco["mean_tokens"] <= 0.13 * tot["mean_tokens"]
    assert eco["failed"] == tot["failed"] == 0


def test_every_method_runs_on_every_item_and_reports_the_figures(defaults: Evaluation) -> None:
    for method in ALL_METHODS:
        row = defaults.table[method]
        assert row["items"] == ITEMS
        for key in ("safety_rate", "utility_rate", "mean_tokens", "p95_tokens", "model_calls", "p95_wall_s"):
            assert row[key] is not None
    assert defaults.table["direct"]["model_calls"] == 1.0  # one generation, no checks
    assert defaults.table["filter"]["safety_rate"] >= defaults.table["direct"]["safety_rate"]


def test_mean_safety_lets_planted_unsafe_steps_through_and_the_weakest_link_does_not(tmp_path: Path) -> None:
    planted = STUDIES["mixed_safety"].variants[0]
    world = SimulationConfig(items=30).with_(**planted.world)
    table = simulate(world, ("ecoalign", "ecoalign_mean"), Policy().with_(**planted.policy), tmp_path).table
    assert table["ecoalign"]["unsafe_step_accepted"] == 0.0
    assert table["ecoalign_mean"]["unsafe_step_accepted"] > 0.0
    assert table["ecoalign"]["safety_rate"] > table["ecoalign_mean"]["safety_rate"]


def test_no_cost_control_spends_more(tmp_path: Path) -> None:
    evaluation = simulate(SimulationConfig(items=30), ("ecoalign", "ecoalign_no_cost"), Policy(budget=10000), tmp_path)
    assert evaluation.table["ecoalign_no_cost"]["mean_tokens"] > evaluation.table["ecoalign"]["mean_tokens"]


def test_no_item_spends_more_than_its_budget(defaults: Evaluation) -> None:
    budgeted = [r for r in defaults.records if r["method"].startswith("ecoalign")]
    assert budgeted
    assert all(r["tokens"] <= r["budget"] for r in budgeted)


def test_the_same_seed_gives_the_same_table(tmp_path: Path) -> None:
    methods = ("ecoalign", "ecoalign_mean", "best_of_n")
    first = simulate(SimulationConfig(items=12, seed=7), methods, Policy(), tmp_path / "a", concurrency=2)
    second = simulate(SimulationConfig(items=12, seed=7), methods, Policy(), tmp_path / "b", concurrency=2)
    other = simulate(SimulationConfig(items=12, seed=8), methods, Policy(), tmp_path / "c")
    assert without_timing(first.table) == without_timing(second.table)
    assert without_timing(first.table) != without_timing(other.table)


def test_a_rerun_in_the_same_folder_skips_finished_pairs(tmp_path: Path) -> None:
    config = SimulationConfig(items=6)
    first = simulate(config, ("ecoalign",), Policy(), tmp_path)
    lines = (tmp_path / "items.jsonl").read_text().splitlines()
    again = simulate(config, ("ecoalign", "direct"), Policy(), tmp_path)
    assert len((tmp_path / "items.jsonl").read_text().splitlines()) == len(lines) + 6  # only the direct pairs ran
    assert again.table["ecoalign"] == first.table["ecoalign"]
    changed = simulate(config, ("ecoalign",), Policy(budget=1500), tmp_path)  # another policy: other jobs
    assert changed.table["ecoalign"]["items"] == 6
    assert len((tmp_path / "items.jsonl").read_text().splitlines()) == len(lines) + 12


def test_the_simulated_model_counts_usage_as_the_emulator_server_does(tmp_path: Path) -> None:
    """The same world served by the emulator through the real OpenAI HTTP provider gives the same tokens."""
    from ecoalign.providers.openai_http import OpenAIChatProvider
    from ecoalign.testing.emulator import EmulatorServer

    world = SimulatedWorld(SimulationConfig(items=3))
    item = world.eval_items()[0]
    from ecoalign.engine.prompts import build_messages

    messages = build_messages(item.request, "thought")
    local = SimulatedModel(world).complete(messages, max_tokens=96, seed=5)
    with EmulatorServer(reply_fn=lambda body: world.reply({**body, "draw": 0})) as emulator:
        provider = OpenAIChatProvider(emulator.base_url, "ecoalign-emulator")
        try:
            remote = provider.complete(messages, max_tokens=96, seed=5)
        finally:
            provider.close()
    assert remote.text == local.text
    assert (remote.usage.prompt_tokens, remote.usage.completion_tokens) == (
        local.usage.prompt_tokens,
        local.usage.completion_tokens,
    )


def test_the_store_is_a_sqlite_file_in_the_output_folder(tmp_path: Path) -> None:
    with store(None, tmp_path):
        pass
    assert (tmp_path / "eval.db").exists()


@pytest.mark.postgres
def test_the_same_table_on_postgres(pg_url: str, tmp_path: Path) -> None:
    """``--db`` puts the jobs in Postgres; the figures are the store's business only through the runtime."""
    methods = ("ecoalign", "direct")
    on_pg = simulate(SimulationConfig(items=6, seed=2), methods, Policy(), tmp_path / "pg", db_url=pg_url)
    on_sqlite = simulate(SimulationConfig(items=6, seed=2), methods, Policy(), tmp_path / "sqlite")
    assert without_timing(on_pg.table) == without_timing(on_sqlite.table)
