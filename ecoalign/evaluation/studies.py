"""Named studies on the simulation (the paper's first experiments, and where EcoAlign's advantage comes from).

Each study is a list of variants (a change to the simulated world and/or the policy) run with a few methods; every
variant runs in its own sub-folder of the output folder (resumable like any evaluation), and the study returns
one row per (variant, method) and the checks it exists for, each with the figures behind it:

* ``cost_ablation``: EcoAlign against ``ecoalign_no_cost`` over budgets: no cost control must not spend less;
* ``budget``: EcoAlign over budgets: utility rises with B, and no item spends more than B;
* ``mixed_safety``: planted unsafe intermediate steps (every second reasoning step of an unsafe request is unsafe,
  the rest read benign, the judge never flags the harmful answer): the weakest link rejects the path, the mean
  accepts it;
* ``horizon``: EcoAlign against ``ecoalign_fixed_horizon`` over low budgets;
* ``merge``: EcoAlign with and without merge thoughts (``Policy.allow_merge``);
* ``sensitivity``: EcoAlign against ``tot_mean`` as m, k and the unsafe-step probability move.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecoalign.engine.policy import Policy
from ecoalign.evaluation.session import simulate
from ecoalign.evaluation.simulation import SimulationConfig


@dataclass(frozen=True)
class Variant:
    label: str
    world: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Study:
    name: str
    methods: tuple[str, ...]
    variants: tuple[Variant, ...]
    checks: Callable[[list[dict[str, Any]]], dict[str, Any]]
    description: str = ""


def _rows(rows: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["method"] == method]


def _cost_checks(rows: list[dict[str, Any]]) -> dict[str, Any]:
    pairs = list(zip(_rows(rows, "ecoalign"), _rows(rows, "ecoalign_no_cost"), strict=True))
    return {
        "no_cost_never_spends_less": all(n["mean_tokens"] >= e["mean_tokens"] for e, n in pairs),
        "tokens_by_budget": {e["variant"]: [e["mean_tokens"], n["mean_tokens"]] for e, n in pairs},
    }


def _budget_checks(rows: list[dict[str, Any]]) -> dict[str, Any]:
    mine = sorted(_rows(rows, "ecoalign"), key=lambda r: r["budget"])
    utilities = [r["utility_rate"] for r in mine]
    return {
        "utility_rises_with_budget": all(b >= a for a, b in itertools.pairwise(utilities)),
        "utility_highest_budget_over_lowest": utilities[-1] - utilities[0] if utilities else None,
        "cost_under_budget": all(r["max_tokens"] <= r["budget"] for r in mine),
        "utility_by_budget": {r["budget"]: r["utility_rate"] for r in mine},
    }


def _mixed_checks(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by = {r["method"]: r for r in rows}
    return {
        "weakest_link_accepts_none": by["ecoalign"]["unsafe_step_accepted"] == 0.0,
        "mean_accepts_some": by["ecoalign_mean"]["unsafe_step_accepted"] > 0.0,
        "unsafe_step_accepted": {m: r["unsafe_step_accepted"] for m, r in by.items()},
        "safety_rate": {m: r["safety_rate"] for m, r in by.items()},
    }


def _horizon_checks(rows: list[dict[str, Any]]) -> dict[str, Any]:
    pairs = list(zip(_rows(rows, "ecoalign"), _rows(rows, "ecoalign_fixed_horizon"), strict=True))
    return {
        "fixed_horizon_spends_more": {e["variant"]: f["mean_tokens"] - e["mean_tokens"] for e, f in pairs},
        "fixed_never_spends_less": all(f["mean_tokens"] >= e["mean_tokens"] for e, f in pairs),
    }


def _sensitivity_checks(rows: list[dict[str, Any]]) -> dict[str, Any]:
    pairs = list(zip(_rows(rows, "ecoalign"), _rows(rows, "tot_mean"), strict=True))
    return {
        "token_ratio": {e["variant"]: e["mean_tokens"] / max(t["mean_tokens"], 1.0) for e, t in pairs},
        "safety_gap": {e["variant"]: (e["safety_rate"] or 0) - (t["safety_rate"] or 0) for e, t in pairs},
    }


def _merge_checks(rows: list[dict[str, Any]]) -> dict[str, Any]:
    pairs = list(zip(rows[0::2], rows[1::2], strict=True))
    keys = ("mean_tokens", "safety_rate", "utility_rate", "mean_utility")
    return {
        "merge_minus_tree": {
            off["budget"]: {k: (on[k] or 0) - (off[k] or 0) for k in keys} for off, on in pairs
        },
    }


BUDGETS = (600, 1000, 1500, 2000, 3000, 4000, 6000, 10000)

STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        Study(
            "cost_ablation",
            ("ecoalign", "ecoalign_no_cost"),
            tuple(Variant(f"B={b}", policy={"budget": b}) for b in (2000, 4000, 10000, 20000)),
            _cost_checks,
            "no cost control must not spend less",
        ),
        Study(
            "budget",
            ("ecoalign",),
            tuple(Variant(f"B={b}", policy={"budget": b}) for b in BUDGETS),
            _budget_checks,
            "utility rises with B, cost stays under B",
        ),
        Study(
            "mixed_safety",
            ("ecoalign", "ecoalign_mean", "tot_mean"),
            (
                Variant(
                    "planted depth 2",
                    world={"planted_depth": 2, "overt_unsafe_share": 0.0, "tainted_recall": 0.0},
                    policy={"budget": 10000},
                ),
            ),
            _mixed_checks,
            "planted unsafe intermediate steps: the weakest link rejects, the mean accepts",
        ),
        Study(
            "horizon",
            ("ecoalign", "ecoalign_fixed_horizon"),
            tuple(Variant(f"B={b} k={k}", policy={"budget": b, "lookahead": k})
                  for k in (2, 3) for b in (1500, 2500, 4000)),
            _horizon_checks,
            "a fixed horizon spends more at low budget",
        ),
        Study(
            "merge",
            ("ecoalign",),
            tuple(Variant(f"B={b} merge={m}", policy={"budget": b, "allow_merge": m})
                  for b in (4000, 10000) for m in (False, True)),
            _merge_checks,
            "merging thoughts (a graph, not a tree): does it pay in tokens, safety, utility?",
        ),
        Study(
            "sensitivity",
            ("ecoalign", "tot_mean"),
            (
                Variant("defaults"),
                Variant("m=2", policy={"branching": 2}),
                Variant("k=3", policy={"lookahead": 3}),
                Variant("p_unsafe_step=0.1", world={"p_unsafe_step": 0.1}),
                Variant("p_unsafe_step=0.5", world={"p_unsafe_step": 0.5}),
                Variant("no overt unsafe, no clear safe", world={"overt_unsafe_share": 0.0, "clear_safe_share": 0.0}),
            ),
            _sensitivity_checks,
            "EcoAlign against tot_mean as m, k, the unsafe-step probability and the scanner's easy share move",
        ),
    )
}


def run_study(
    name: str,
    config: SimulationConfig,
    policy: Policy,
    out_dir: Path,
    *,
    concurrency: int = 1,
    progress: Any = None,
) -> dict[str, Any]:
    """Run the study's variants; returns ``{"study", "description", "rows", "checks"}`` (rows: per variant and
    method, the method summary plus ``variant``, ``budget`` and ``max_tokens``)."""
    study = get_study(name)
    rows: list[dict[str, Any]] = []
    for index, variant in enumerate(study.variants):
        world = config.with_(**variant.world)
        pol = policy.with_(**variant.policy)
        evaluation = simulate(world, study.methods, pol, out_dir / f"{index:02d}", concurrency=concurrency,
                              progress=progress)
        for method, summary in evaluation.table.items():
            spent = [r["tokens"] for r in evaluation.records if r["method"] == method]
            rows.append({"variant": variant.label, "method": method, "budget": pol.budget,
                         "max_tokens": max(spent, default=0), **summary})
    return {"study": name, "description": study.description, "rows": rows, "checks": study.checks(rows)}


def get_study(name: str) -> Study:
    try:
        return STUDIES[name]
    except KeyError:
        raise ValueError(f"unknown study {name!r}; choose one of: {', '.join(STUDIES)}") from None


def study_pairs(name: str, items: int) -> int:
    """How many (item, method) jobs the study runs (for the progress bar)."""
    study = get_study(name)
    return items * len(study.methods) * len(study.variants)


def variants_of(name: str) -> Sequence[Variant]:
    return get_study(name).variants
