"""``ecoalign tune``: the cheapest policy that meets a safety target (and a utility floor), found with optuna on a
calibration split and reported on the held-back split.

The search space is the policy's economics: λ (``cost_weight``), k (``lookahead``), δ (``discount``), τ_easy,
τ_hard, m (``branching``) and B (``budget``). Every trial is an evaluation of EcoAlign on the calibration items
(its own sub-folder, so a rerun reuses finished jobs: a trial with the same policy has the same job ids). The
objective is the mean tokens per item; the targets are optuna constraints (``Trial.set_constraint``:
a trial that misses them is infeasible, whatever it costs). The default policy is the first trial, so the tuner
always knows what it must beat.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecoalign.engine.policy import Policy
from ecoalign.evaluation.items import EvalItem

# (items, policy, folder) -> the EcoAlign row of the evaluation's table
Evaluate = Callable[[Sequence[EvalItem], Policy, Path], dict[str, Any]]
SPACE = ("cost_weight", "lookahead", "discount", "tau_easy", "tau_hard", "branching", "budget")


@dataclass(frozen=True)
class Targets:
    safety: float
    utility: float | None = None

    def shortfalls(self, row: dict[str, Any]) -> list[float]:
        """Constraint values (≤ 0 means met): how far the row falls short of each target."""
        out = [self.safety - (row["safety_rate"] if row["safety_rate"] is not None else 1.0)]
        if self.utility is not None:
            out.append(self.utility - (row["utility_rate"] if row["utility_rate"] is not None else 1.0))
        return out

    def met(self, row: dict[str, Any]) -> bool:
        return all(s <= 0 for s in self.shortfalls(row))


def split(items: Sequence[EvalItem], holdout: float = 0.5) -> tuple[list[EvalItem], list[EvalItem]]:
    """(calibration, held-back): each item's side is fixed by a hash of its id, per label (stratified)."""
    calibration: list[EvalItem] = []
    held: list[EvalItem] = []
    for label in ("safe", "unsafe"):
        mine = sorted((i for i in items if i.label == label),
                      key=lambda i: hashlib.sha256(i.custom_id.encode()).hexdigest())
        cut = round(len(mine) * (1.0 - holdout))
        calibration += mine[:cut]
        held += mine[cut:]
    return calibration, held


def suggest(trial: Any, base: Policy) -> Policy:
    """The trial's policy: the searched fields drawn, the rest from ``base``."""
    tau_hard = trial.suggest_float("tau_hard", 0.0, base.tau)
    return base.with_(
        cost_weight=trial.suggest_float("cost_weight", 0.01, 2.0, log=True),
        lookahead=trial.suggest_int("lookahead", 1, 4),
        discount=trial.suggest_float("discount", 0.5, 1.0),
        tau_easy=trial.suggest_float("tau_easy", max(base.tau, 0.6), 1.0),
        tau_hard=tau_hard,
        branching=trial.suggest_int("branching", 1, 4),
        budget=trial.suggest_int("budget", 500, 8000, log=True),
    )


def tune(
    items: Sequence[EvalItem],
    evaluate: Evaluate,
    targets: Targets,
    out_dir: Path,
    *,
    trials: int = 30,
    seed: int = 0,
    holdout: float = 0.5,
    base: Policy | None = None,
) -> dict[str, Any]:
    """Search, then report the best feasible policy and the default on the held-back split; writes
    ``policy.json`` (what ``--policy`` accepts) and ``tune.json``."""
    import optuna

    base = base or Policy()
    calibration, held = split(items, holdout)
    if not calibration or not held:
        raise ValueError("too few items to split into calibration and held-back parts")
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: Any) -> float:
        policy = suggest(trial, base)
        row = evaluate(calibration, policy, out_dir / "trials" / f"{trial.number:03d}")
        trial.set_user_attr("row", row)
        trial.set_user_attr("policy", policy.to_dict())
        shortfalls = targets.shortfalls(row)
        trial.set_user_attr("constraints", shortfalls)
        for name, value in zip(("safety", "utility"), shortfalls, strict=False):
            trial.set_constraint(name, value)
        return float(row["mean_tokens"])

    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.enqueue_trial({name: getattr(base, name) for name in SPACE})  # trial 0: the default policy
    study.optimize(objective, n_trials=max(1, trials))
    feasible = [t for t in study.trials if t.value is not None and all(c <= 0 for c in t.user_attrs["constraints"])]
    best = min(feasible, key=lambda t: (t.value, t.number)) if feasible else None
    chosen = Policy.from_dict(best.user_attrs["policy"]) if best else base
    report: dict[str, Any] = {
        "targets": {"safety": targets.safety, "utility": targets.utility},
        "split": {"calibration": len(calibration), "held_back": len(held)},
        "trials": len(study.trials),
        "feasible_trials": len(feasible),
        "found": best is not None,
        "best_trial": best.number if best else None,
        "policy": chosen.to_dict(),
        "calibration": {"tuned": best.user_attrs["row"] if best else None,
                        "default": study.trials[0].user_attrs["row"]},
    }
    tuned_held = evaluate(held, chosen, out_dir / "held_back" / "tuned")
    report["held_back"] = {
        "tuned": tuned_held,
        "default": evaluate(held, base, out_dir / "held_back" / "default"),
        "tuned_meets_targets": targets.met(tuned_held),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "policy.json").write_text(json.dumps({"policy": chosen.to_dict()}, indent=2) + "\n")
    (out_dir / "tune.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
