"""``ecoalign eval``: EcoAlign against its baselines on a data set or in the simulation, with a table on stdout,
results.json, results.csv and PNG plots in the output folder."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ecoalign.cli_errors import CliError, policy_option


def add_eval_parser(sub: Any) -> None:
    from ecoalign.cli_models import add_model_arguments

    p = sub.add_parser("eval", help="compare EcoAlign with its baselines (tokens, safety, utility, latency)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="a data file: the project's JSONL, a FigStep CSV or an XSTest CSV")
    source.add_argument("--simulate", action="store_true", help="the simulation (a simulated model and judge)")
    p.add_argument("--format", default="auto", help="auto (default), jsonl, figstep or xstest")
    p.add_argument("--methods", default=None, help="comma-separated methods, or 'all' (default: every method in "
                   "the simulation; ecoalign,direct,filter,best_of_n,tot_mean on data)")
    p.add_argument("--study", default=None, help="a named simulation study: cost_ablation, budget, mixed_safety, "
                   "horizon, merge, sensitivity")
    p.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    p.add_argument("--items", type=int, default=100, help="simulated items (default 100)")
    p.add_argument("--budget", type=int, default=None, help="token budget B of EcoAlign and its ablations")
    p.add_argument("--budgets", default=None, help="also sweep EcoAlign over these budgets, e.g. 1000,2000,4000")
    p.add_argument("--policy", default=None, metavar="JSON|FILE", help="policy overrides (JSON or a JSON file, "
                   "e.g. one written by ecoalign tune)")
    p.add_argument("--limit", type=int, default=None, help="only the first N items of --data")
    p.add_argument("--concurrency", type=int, default=1, help="jobs at once (default 1)")
    p.add_argument("--db", default=None, help="database URL (default: a SQLite file in the output folder)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder (a rerun resumes it)")
    add_model_arguments(p)
    p.set_defaults(func=cmd_eval)


def policy_from(value: str | None, budget: int | None) -> Any:
    """The policy of ``--policy`` (inline JSON, or a file holding it) with ``--budget`` on top."""
    from ecoalign.engine.policy import Policy, PolicyError

    overrides = policy_option(value)
    if budget is not None:
        overrides["budget"] = budget
    try:
        return Policy.from_dict(overrides)
    except (PolicyError, TypeError) as exc:
        raise CliError(str(exc)) from None


def _progress(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="job", disable=not enabled, file=sys.stderr)


def cmd_eval(args: argparse.Namespace) -> int:
    from ecoalign.evaluation.methods import ALL_METHODS, parse_methods

    if args.concurrency < 1 or args.items < 1:
        raise CliError("--concurrency and --items must be at least 1")
    policy = policy_from(args.policy, args.budget)
    try:
        methods = parse_methods(args.methods) if args.methods or args.data else ALL_METHODS
    except ValueError as exc:
        raise CliError(str(exc)) from None
    budgets = _int_list(args.budgets, "--budgets")
    if args.simulate:
        return _eval_simulation(args, methods, policy, budgets)
    if args.study:
        raise CliError("--study needs --simulate")
    return _eval_data(args, methods, policy, budgets)


def _int_list(value: str | None, flag: str) -> list[int]:
    if not value:
        return []
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise CliError(f"{flag}: expected comma-separated integers, got {value!r}") from None


def _eval_simulation(args: argparse.Namespace, methods: tuple[str, ...], policy: Any, budgets: list[int]) -> int:
    from ecoalign.evaluation.metrics import format_table
    from ecoalign.evaluation.output import SIMULATION_LABEL, write_results
    from ecoalign.evaluation.session import simulate
    from ecoalign.evaluation.simulation import SimulationConfig

    config = SimulationConfig(seed=args.seed, items=args.items)
    if args.study:
        return _run_study(args, config, policy)
    with _progress(args.items * len(methods), not args.no_progress) as bar:
        evaluation = simulate(config, methods, policy, args.output, db_url=args.db, concurrency=args.concurrency,
                              progress=bar.update)
    extra = {"budget_sweep": _budget_sweep(args, config, policy, budgets)} if budgets else {}
    meta = {"simulation_config": config.to_dict(), "policy": policy.to_dict()}
    write_results(args.output, evaluation.table, evaluation.records, meta=meta, simulated=True,
                  plot=not args.no_plots, extra=extra)
    print(SIMULATION_LABEL)
    print(format_table(evaluation.table))
    return 0


def _budget_sweep(args: argparse.Namespace, config: Any, policy: Any, budgets: list[int]) -> list[dict[str, Any]]:
    from ecoalign.evaluation.plots import budget_sweep
    from ecoalign.evaluation.session import simulate

    rows = []
    for budget in budgets:
        evaluation = simulate(config, ("ecoalign",), policy.with_(budget=budget), args.output / f"budget-{budget}",
                              db_url=args.db, concurrency=args.concurrency)
        rows += [{"budget": budget, "method": m, **row} for m, row in evaluation.table.items()]
    if not args.no_plots:
        budget_sweep(rows, args.output / "budget_sweep.png", simulated=True)
    return rows


def _run_study(args: argparse.Namespace, config: Any, policy: Any) -> int:
    from ecoalign.evaluation.output import SIMULATION_LABEL
    from ecoalign.evaluation.plots import budget_sweep
    from ecoalign.evaluation.studies import run_study, study_pairs

    try:
        total = study_pairs(args.study, args.items)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    with _progress(total, not args.no_progress) as bar:
        result = run_study(args.study, config, policy, args.output, concurrency=args.concurrency,
                           progress=bar.update)
    result = {"simulation": True, "label": SIMULATION_LABEL, "simulation_config": config.to_dict(),
              "policy": policy.to_dict(), **result}
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "results.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if not args.no_plots and args.study in ("budget", "cost_ablation", "horizon"):
        budget_sweep(result["rows"], args.output / "budget_sweep.png", simulated=True)
    print(SIMULATION_LABEL)
    print(f"study {args.study}: {result['description']}")
    for row in result["rows"]:
        print(f"  {row['variant']:<34} {row['method']:<24} safety {_f(row['safety_rate'])} "
              f"utility {_f(row['utility_rate'])} mean tokens {row['mean_tokens']:.0f} "
              f"max {row['max_tokens']} unsafe-step {row['unsafe_step_accepted']:.3f}")
    print("checks:", json.dumps(result["checks"], indent=2))
    return 0


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@contextmanager
def _real_endpoint(args: argparse.Namespace) -> Iterator[tuple[list[Any], Any, str]]:
    """For ``--data``: its items, the services of the model and judge the flags name, and the key the results
    are filed under (model, judge); the process's root is closed after. Bad data or a bad endpoint: a CliError."""
    from ecoalign.cli_models import model_settings
    from ecoalign.evaluation.data import DataError, load_items
    from ecoalign.runtime.factory import ServiceError
    from ecoalign.runtime.root import Root
    from ecoalign.settings import get_settings

    try:
        items = load_items(args.data, args.format, limit=args.limit)
    except DataError as exc:
        raise CliError(str(exc)) from None
    if args.model_url and not args.model:
        raise CliError("--model-url needs --model (or $ECOALIGN_MODEL)")
    root = Root(model_settings(get_settings(), args))
    try:
        try:
            services = root.services()
        except ServiceError as exc:
            raise CliError(str(exc)) from None
        s = root.settings
        yield items, services, f"{s.model_url or 'local'}|{s.model or ''}|{s.judge_model or ''}"
    finally:
        root.close()


def _eval_data(args: argparse.Namespace, methods: tuple[str, ...], policy: Any, budgets: list[int]) -> int:
    from ecoalign.evaluation.judging import EvaluatorJudge
    from ecoalign.evaluation.metrics import format_table
    from ecoalign.evaluation.output import write_results
    from ecoalign.evaluation.runner import Plan
    from ecoalign.evaluation.session import evaluate, store

    with _real_endpoint(args) as (items, services, model_key):
        judge = EvaluatorJudge(services.evaluator, policy.tau)
        rows = []
        with store(args.db, args.output) as factory:
            plan = Plan(items, methods, policy, concurrency=args.concurrency, node_workers=4, model_key=model_key)
            with _progress(len(items) * len(methods), not args.no_progress) as bar:
                evaluation = evaluate(factory, lambda item, method: services, judge, args.output, plan,
                                      progress=bar.update)
            for budget in budgets:
                swept = evaluate(factory, lambda item, method: services, judge, args.output / f"budget-{budget}",
                                 Plan(items, ("ecoalign",), policy.with_(budget=budget), concurrency=args.concurrency,
                                      node_workers=4, model_key=model_key))
                rows += [{"budget": budget, "method": m, **row} for m, row in swept.table.items()]
    meta = {"data": str(args.data), "model": model_key, "policy": policy.to_dict()}
    write_results(args.output, evaluation.table, evaluation.records, meta=meta, simulated=False,
                  plot=not args.no_plots, extra={"budget_sweep": rows} if rows else None)
    if rows and not args.no_plots:
        from ecoalign.evaluation.plots import budget_sweep

        budget_sweep(rows, args.output / "budget_sweep.png", simulated=False)
    print(format_table(evaluation.table))
    return 0


# -- tune -----------------------------------------------------------------------------------------------------------
def add_tune_parser(sub: Any) -> None:
    from ecoalign.cli_models import add_model_arguments

    p = sub.add_parser("tune", help="find the cheapest policy meeting a safety target (optuna), report it held back")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="a data file (as ecoalign eval --data)")
    source.add_argument("--simulate", action="store_true", help="tune on the simulation")
    p.add_argument("--format", default="auto", help="auto (default), jsonl, figstep or xstest")
    p.add_argument("--target-safety", type=float, required=True, help="safety rate to reach, e.g. 0.95")
    p.add_argument("--min-utility", type=float, default=None, help="utility rate to keep, e.g. 0.6")
    p.add_argument("--trials", type=int, default=30, help="optuna trials (default 30)")
    p.add_argument("--holdout", type=float, default=0.5, help="share of items held back (default 0.5)")
    p.add_argument("--seed", type=int, default=0, help="simulation and sampler seed")
    p.add_argument("--items", type=int, default=100, help="simulated items (default 100)")
    p.add_argument("--policy", default=None, metavar="JSON|FILE", help="the base policy (default: the defaults)")
    p.add_argument("--limit", type=int, default=None, help="only the first N items of --data")
    p.add_argument("--concurrency", type=int, default=1, help="jobs at once (default 1)")
    p.add_argument("--db", default=None, help="database URL (default: a SQLite file in the output folder)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder (policy.json, tune.json)")
    add_model_arguments(p)
    p.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from ecoalign.evaluation.tune import Targets, tune

    if not 0.0 <= args.target_safety <= 1.0 or not 0.0 < args.holdout < 1.0 or args.trials < 1:
        raise CliError("--target-safety must be in [0, 1], --holdout in (0, 1), --trials at least 1")
    base = policy_from(args.policy, None)
    targets = Targets(args.target_safety, args.min_utility)
    if args.simulate:
        from ecoalign.evaluation.session import simulate
        from ecoalign.evaluation.simulation import SimulatedWorld, SimulationConfig

        config = SimulationConfig(seed=args.seed, items=args.items)
        items = SimulatedWorld(config).eval_items()

        def evaluate(subset: Any, policy: Any, folder: Path) -> dict[str, Any]:
            return simulate(config, ("ecoalign",), policy, folder, db_url=args.db, concurrency=args.concurrency,
                            items=subset).table["ecoalign"]

        report = tune(items, evaluate, targets, args.output, trials=args.trials, seed=args.seed,
                      holdout=args.holdout, base=base)
    else:
        with _real_setup(args) as (items, evaluate):
            report = tune(items, evaluate, targets, args.output, trials=args.trials, seed=args.seed,
                          holdout=args.holdout, base=base)
    _print_tune(report, simulated=args.simulate)
    return 0 if report["found"] else 1


def _print_tune(report: dict[str, Any], *, simulated: bool) -> None:
    from ecoalign.evaluation.output import SIMULATION_LABEL

    if simulated:
        print(SIMULATION_LABEL)
    print(f"{report['trials']} trials, {report['feasible_trials']} feasible on the calibration split "
          f"({report['split']['calibration']} items); held back: {report['split']['held_back']} items")
    for name in ("tuned", "default"):
        row = report["held_back"][name]
        print(f"  held back, {name:<8} policy: safety {_f(row['safety_rate'])} utility {_f(row['utility_rate'])} "
              f"mean tokens {row['mean_tokens']:.0f}")
    print("policy:", json.dumps({k: report["policy"][k] for k in
                                 ("cost_weight", "lookahead", "discount", "tau_easy", "tau_hard", "branching",
                                  "budget")}))


@contextmanager
def _real_setup(args: argparse.Namespace) -> Iterator[tuple[list[Any], Callable[..., dict[str, Any]]]]:
    """The items of ``--data`` and an evaluate(items, policy, folder) on the real model, judge and store."""
    from ecoalign.evaluation.judging import EvaluatorJudge
    from ecoalign.evaluation.runner import Plan
    from ecoalign.evaluation.session import evaluate, store

    with _real_endpoint(args) as (items, services, model_key), store(args.db, args.output) as factory:

        def run(subset: Any, policy: Any, folder: Path) -> dict[str, Any]:
            plan = Plan(subset, ("ecoalign",), policy, concurrency=args.concurrency, node_workers=4,
                        model_key=model_key)
            judge = EvaluatorJudge(services.evaluator, policy.tau)
            return evaluate(factory, lambda item, method: services, judge, folder, plan).table["ecoalign"]

        yield items, run
