"""The engine's decisions on a fixed set of searches, dumped as JSON lines, so that a refactor or an optimisation
can be shown to change nothing: run it before and after and compare the digests (or diff the files).

864 searches: every strategy x 4 budgets x 3 scan safeties x 9 seeds, driven by the pure in-memory executor with
a deterministic model and scorer (text, tokens, safety and utility derived from a hash of the node id and seed).
Nothing here touches a database, a model server or the clock.

    python -m benchmarks.engine_decisions -o /tmp/decisions.jsonl    # prints the SHA-256 of the dump
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from ecoalign.engine.graph import Node, ThoughtGraph
from ecoalign.engine.policy import Policy
from ecoalign.engine.strategies import STRATEGIES
from ecoalign.testing.engine_harness import Run, run_search

BUDGETS = (600, 1500, 4000, 10000)
SCAN_SAFETIES = (0.3, 0.6, 0.97)
SEEDS = range(9)


def _unit(*parts: object) -> float:
    """A number in [0, 1) fixed by ``parts``."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _model(seed: int):  # type: ignore[no-untyped-def]
    def generate(node: Node, graph: ThoughtGraph) -> tuple[str, int]:
        return f"{node.kind.value}-{node.id[:8]}", 20 + int(180 * _unit(seed, "tokens", node.id))

    return generate


def _scorer(seed: int):  # type: ignore[no-untyped-def]
    def score(node: Node, graph: ThoughtGraph) -> tuple[float, float]:
        safety = 0.3 + 0.7 * _unit(seed, "safety", node.id)  # mostly safe steps, some below τ
        return round(safety, 4), round(_unit(seed, "utility", node.id), 4)

    return score


def _dump(run: Run) -> dict[str, Any]:
    out = run.outcome
    return {
        "decision": out.decision,
        "node": out.node_id,
        "path": list(out.path),
        "safety": out.safety,
        "utility": out.utility,
        "cost": out.cost,
        "reason": out.reason,
        "pareto": [[p.safety, p.utility, p.cost] for p in out.pareto],
        "nodes": [[n.id, n.kind.value, n.status.value, n.tokens, list(n.parents)] for n in run.graph],
        "ledger": [run.ledger.total, run.ledger.spent, run.ledger.reserved],
    }


def searches() -> list[dict[str, Any]]:
    rows = []
    for name, strategy in STRATEGIES.items():
        for budget in BUDGETS:
            for scan in SCAN_SAFETIES:
                for seed in SEEDS:
                    run = run_search(
                        Policy(budget=budget),
                        _model(seed),
                        _scorer(seed),
                        strategy=strategy,
                        scan_safety=scan,
                        job_id=f"job-{seed}",
                        batch=1 + seed % 3,
                    )
                    rows.append({"strategy": name, "budget": budget, "scan": scan, "seed": seed, **_dump(run)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, help="write the dump here (JSON lines)")
    args = parser.parse_args(argv)
    text = "".join(json.dumps(row, sort_keys=True) + "\n" for row in searches())
    if args.output:
        args.output.write_text(text)
    decisions = {d: text.count(f'"decision": "{d}"') for d in ("answered", "refused")}
    print(f"{text.count(chr(10))} searches, {decisions}, sha256 {hashlib.sha256(text.encode()).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
