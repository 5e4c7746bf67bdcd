"""``ecoalign audit``: re-score imported reasoning traces or stored jobs, print the summary table, write the report.

Every run is stored in the database (``--db``) with its results; the report file has one JSON line per trace (a line
that failed has ``error`` instead of scores, and stderr names its line number). Exit status 0 when every trace was
scored, 1 when some failed (the others are in the report), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from ecoalign.cli_errors import CliError


def add_audit_parser(sub: Any) -> None:
    p = sub.add_parser("audit", help="re-score the steps of reasoning traces and find process-blind ones")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--import", dest="import_file", metavar="FILE.jsonl",
                        help="traces from elsewhere: {id, prompt, images?, steps, answer} or OpenAI chat lines")
    source.add_argument("--jobs", metavar="FILTER",
                        help="stored jobs: 'all', or key=value pairs joined by commas with the filters of "
                             "GET /v1/traces (decision, min_path_safety, max_path_safety, category, evaluator, "
                             "strategy, created_after, created_before)")
    p.add_argument("--evaluator", action="append", choices=("offline", "heuristic", "judge"), default=None,
                   help="evaluator to re-score with (repeatable: the weakest link of them); default offline")
    p.add_argument("--judge-url", default=os.environ.get("ECOALIGN_JUDGE_URL"),
                   help="OpenAI base URL of the judge (for --evaluator judge; default $ECOALIGN_JUDGE_URL)")
    p.add_argument("--judge-model", default=os.environ.get("ECOALIGN_JUDGE_MODEL"), help="the judge's model name")
    p.add_argument("--aggregate", choices=("min", "mean"), default="min",
                   help="path safety: min, the weakest step (default); mean only to compare with")
    p.add_argument("--tau", type=float, default=0.5, help="safety threshold (default 0.5)")
    p.add_argument("--tenant", default=None, help="with --jobs: only this tenant's jobs (default: every tenant's)")
    p.add_argument("--db", default=os.environ.get("ECOALIGN_DB_URL"),
                   help="database URL (default: $ECOALIGN_DB_URL, else sqlite file ./ecoalign.db)")
    p.add_argument("-o", "--output", required=True, metavar="REPORT.jsonl", help="the report, one line per trace")
    p.set_defaults(func=cmd_audit)


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def _import_items(path: Path) -> Iterator[Any]:
    from ecoalign.audit.imports import parse_lines

    with path.open(encoding="utf-8", errors="replace") as fh:
        yield from parse_lines(fh, image_root=path.parent)


def _check_args(args: argparse.Namespace) -> tuple[Any, Any]:
    from ecoalign.audit.service import AuditOptions, AuditOptionsError
    from ecoalign.audit.traces import TraceFilterError, parse_filter_pairs

    try:
        options = AuditOptions(aggregate=args.aggregate, tau=args.tau)
    except AuditOptionsError as exc:
        raise CliError(str(exc)) from None
    out_dir = Path(args.output).resolve().parent
    if not out_dir.is_dir():
        raise CliError(f"-o: folder does not exist: {out_dir}")
    flt = None
    if args.import_file is not None:
        if not Path(args.import_file).is_file():
            raise CliError(f"--import: no such file: {args.import_file}")
    else:
        try:
            flt = parse_filter_pairs(args.jobs)
        except TraceFilterError as exc:
            raise CliError(f"--jobs: {exc}") from None
    return options, flt


def cmd_audit(args: argparse.Namespace) -> int:
    from ecoalign.audit.evaluators import AuditSetupError, build_evaluator
    from ecoalign.audit.service import job_items, run_audit
    from ecoalign.runtime.root import Root
    from ecoalign.settings import get_settings
    from ecoalign.store.migrate import ensure_schema
    from ecoalign.store.traces import Scope

    options, flt = _check_args(args)
    settings = get_settings()
    settings = settings.model_copy(update={"db_url": args.db or settings.db_url})
    root = Root(settings)
    try:
        try:
            evaluator = build_evaluator(
                args.evaluator or ["offline"], root, judge_url=args.judge_url, judge_model=args.judge_model,
                judge_api_key=settings.judge_api_key,
            )
        except AuditSetupError as exc:
            raise CliError(str(exc)) from None
        ensure_schema(settings.db_url)
        sessions = root.sessions()
        if args.import_file is not None:
            path = Path(args.import_file)
            items, total, spec = _import_items(path), _count_lines(path), {"import": path.name}
            source, tenant = "import", None
        else:
            scope = Scope(tenant_id=args.tenant) if args.tenant else Scope(all_tenants=True)
            items, total = job_items(sessions, scope, flt), None
            spec = {"jobs": args.jobs, "tenant": args.tenant}
            source, tenant = "jobs", args.tenant
        with open(args.output, "w", encoding="utf-8") as out:
            bar = _progress_bar(total)
            try:
                run_id, summary = run_audit(
                    sessions, evaluator, items, tenant_id=tenant, source=source, spec=spec, options=options,
                    on_line=lambda line: _write(line, out, bar, source),
                )
            finally:
                bar.close()
                evaluator.close()
    finally:
        root.close()
    print(summary.table(), file=sys.stderr)
    print(f"audit {run_id}: {summary.scored} of {summary.traces} traces scored; report {args.output}", file=sys.stderr)
    return 1 if summary.failed else 0


def _write(line: dict[str, Any], out: TextIO, bar: Any, source: str) -> None:
    out.write(json.dumps(line, ensure_ascii=False) + "\n")
    bar.update(1)
    if "error" in line:
        where = f"line {line['position']}" if source == "import" else f"job {line['id']}"
        bar.write(f"ecoalign: audit: {where}: {line['error']}", file=sys.stderr)


def _progress_bar(total: int | None) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="trace", dynamic_ncols=True, file=sys.stderr, mininterval=0.5, disable=None)
