"""Writing an evaluation's results: ``results.json`` (per method under ``"methods"``), ``results.csv`` and the
plots."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ecoalign.evaluation import plots

SIMULATION_LABEL = "SIMULATION: a simulated model, scanner and judge (ecoalign.evaluation.simulation), not a real model"


def write_results(
    out_dir: Path,
    table: dict[str, dict[str, Any]],
    records: Sequence[dict[str, Any]],
    *,
    meta: dict[str, Any],
    simulated: bool,
    plot: bool = True,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write results.json, results.csv and (unless ``plot`` is false) the PNG plots; returns the JSON document."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "simulation": simulated,
        **({"label": SIMULATION_LABEL} if simulated else {}),
        **meta,
        "methods": table,
        **(extra or {}),
    }
    (out_dir / "results.json").write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    columns = ["method", *next(iter(table.values())).keys()] if table else ["method"]
    with (out_dir / "results.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for method, row in table.items():
            writer.writerow({"method": method, **row})
    if plot and table:
        plots.tokens_vs_safety(table, out_dir / "tokens_vs_safety.png", simulated=simulated)
        plots.token_distribution(records, list(table), out_dir / "token_distribution.png", simulated=simulated)
    return document
