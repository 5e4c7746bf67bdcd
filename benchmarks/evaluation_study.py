"""The full simulation study of issue 12 (labelled a simulation wherever it is reported): every method at the
defaults, then the named studies, at a size no test can afford. Prints each table and the checks, and writes
everything (results.json, results.csv, plots) under the output folder.

    python -m benchmarks.evaluation_study -o /tmp/eval-study --items 200 --seed 0

The same figures come from the CLI, one at a time: ``ecoalign eval --simulate --items 200 -o DIR`` and
``ecoalign eval --simulate --study NAME --items 200 -o DIR``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ecoalign.engine.policy import Policy
from ecoalign.evaluation.methods import ALL_METHODS
from ecoalign.evaluation.metrics import format_table
from ecoalign.evaluation.output import SIMULATION_LABEL, write_results
from ecoalign.evaluation.session import simulate
from ecoalign.evaluation.simulation import SimulationConfig
from ecoalign.evaluation.studies import STUDIES, run_study


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--studies", default=",".join(STUDIES))
    args = parser.parse_args(argv)
    config = SimulationConfig(seed=args.seed, items=args.items)
    print(SIMULATION_LABEL)
    started = time.perf_counter()
    main_dir = args.output / "main"
    evaluation = simulate(config, ALL_METHODS, Policy(), main_dir, concurrency=args.concurrency)
    write_results(main_dir, evaluation.table, evaluation.records, meta={"simulation_config": config.to_dict(),
                  "policy": Policy().to_dict()}, simulated=True)
    print(format_table(evaluation.table))
    eco, tot = evaluation.table["ecoalign"], evaluation.table["tot_mean"]
    print(f"ecoalign / tot_mean mean tokens: {eco['mean_tokens'] / tot['mean_tokens']:.4f}; "
          f"safety {eco['safety_rate']:.3f} vs {tot['safety_rate']:.3f}")
    for name in [s for s in args.studies.split(",") if s]:
        result = run_study(name, config, Policy(), args.output / name, concurrency=args.concurrency)
        (args.output / name / "results.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nstudy {name}: {result['description']}")
        for row in result["rows"]:
            print(f"  {row['variant']:<32} {row['method']:<24} safety {row['safety_rate'] or 0:.3f} "
                  f"utility {row['utility_rate'] or 0:.3f} mean tokens {row['mean_tokens']:8.0f} "
                  f"max {row['max_tokens']:6d} unsafe-step {row['unsafe_step_accepted']:.3f}")
        print("  checks:", json.dumps(result["checks"]))
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
