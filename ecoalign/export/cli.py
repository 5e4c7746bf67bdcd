"""``ecoalign export --format dpo|sft|kto|review-labels [--filter KEY=VALUE ...] [--db URL] -o FILE``

(FILE: ``.jsonl`` or ``.parquet``.)"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

from ecoalign.cli_errors import CliError

FILTER_KEYS = (
    "tenant_id", "strategy", "decision", "evaluator", "created_after", "created_before", "min_path_safety",
    "max_path_safety",
)
LABEL_FILTER_KEYS = ("tenant_id", "policy_id", "created_after", "created_before")  # review-labels: of the tasks


def add_export_parser(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="export stored thought graphs as training data (TRL's DPO / SFT / KTO formats, JSONL or Parquet), "
        "or the human review verdicts as classifier labels (review-labels)",
        description="Write the stored jobs' chosen safe paths and their rejected siblings as a TRL dataset, "
        "or (review-labels) each decided review task's item with its latest human verdict, "
        "plus FILE.manifest.json. See docs/audit.md.",
    )
    p.add_argument("--format", required=True, choices=["dpo", "sft", "kto", "review-labels"],
                   help="TRL dataset type, or review-labels (text + human label, for a moderation classifier)")
    p.add_argument("-o", "--output", required=True, metavar="FILE.jsonl|FILE.parquet")
    p.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"only jobs where KEY=VALUE (repeatable; keys: {', '.join(FILTER_KEYS)}; for review-labels: "
        f"{', '.join(LABEL_FILTER_KEYS)}; dates in ISO 8601)",
    )
    p.add_argument("--db", default=os.environ.get("ECOALIGN_DB_URL"), help="database (default: $ECOALIGN_DB_URL)")
    p.add_argument(
        "--images",
        choices=["paths", "embed"],
        default="paths",
        help="images as files next to the output (paths, default) or as bytes in the rows (embed: Parquet only)",
    )
    p.add_argument(
        "--text-content",
        action="store_true",
        help="message content as plain strings for text-only models (jobs with images are skipped)",
    )
    p.add_argument("--pairs-per-prompt", type=int, default=4, metavar="N", help="DPO pairs / KTO negatives per job")
    p.add_argument("--with-ids", action="store_true", help="add job_id and node_ids columns (for tracing rows back)")
    p.add_argument("--batch-size", type=int, default=256, metavar="JOBS", help="jobs read per batch")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=cmd_export)


def _value(key: str, raw: str) -> Any:
    if key in ("created_after", "created_before"):
        try:
            return datetime.fromisoformat(raw)
        except ValueError:
            raise CliError(f"--filter {key}={raw}: not an ISO 8601 date or time") from None
    if key in ("min_path_safety", "max_path_safety"):
        try:
            value = float(raw)
        except ValueError:
            raise CliError(f"--filter {key}={raw}: not a number") from None
        if not 0.0 <= value <= 1.0:
            raise CliError(f"--filter {key}={raw}: must be between 0 and 1")
        return value
    return raw


def parse_filters(items: list[str], *, labels: bool = False) -> Any:
    """``KEY=VALUE`` strings as a ``JobFilter`` (a ``LabelFilter`` for review-labels; a bad one is a CLI error
    naming it)."""
    from ecoalign.store.exports import JobFilter
    from ecoalign.store.reviews import LabelFilter

    kind: Any = LabelFilter if labels else JobFilter
    keys = LABEL_FILTER_KEYS if labels else FILTER_KEYS
    known = {f.name for f in fields(kind)}
    values: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in known:
            raise CliError(f"--filter {item!r}: expected KEY=VALUE with KEY one of {', '.join(keys)}")
        values[key] = _value(key, raw.strip())
    return kind(**values)


def _check_output(args: argparse.Namespace) -> Path:
    output = Path(args.output)
    if output.suffix not in (".jsonl", ".parquet"):
        raise CliError(f"{output}: the output must end in .jsonl or .parquet")
    if args.images == "embed" and output.suffix != ".parquet":
        raise CliError("--images embed needs a .parquet output (JSONL has no bytes; use --images paths)")
    if output.exists() and not args.overwrite:
        raise CliError(f"{output} exists (pass --overwrite to replace it)")
    if not output.parent.is_dir():
        raise CliError(f"{output.parent} is not a directory")
    if args.pairs_per_prompt < 0 or args.batch_size < 1:
        raise CliError("--pairs-per-prompt must be >= 0 and --batch-size >= 1")
    return output


def cmd_export(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import DBAPIError
    from tqdm import tqdm

    from ecoalign.export.formats import ExportFormat, Options
    from ecoalign.export.run import export
    from ecoalign.export.writer import ImageMode
    from ecoalign.settings import get_settings
    from ecoalign.store.db import make_engine, session_factory
    from ecoalign.store.exports import count_finished_jobs
    from ecoalign.store.reviews import count_human_labels

    output = _check_output(args)
    labels = args.format == "review-labels"
    spec = parse_filters(args.filter, labels=labels)
    options = Options(ExportFormat(args.format), text_content=args.text_content, pairs_per_prompt=args.pairs_per_prompt)
    images = ImageMode.NONE if args.text_content else ImageMode(args.images)
    url = args.db or get_settings().db_url
    engine = make_engine(url)
    try:
        factory = session_factory(engine)
        try:
            total = count_human_labels(factory, spec) if labels else count_finished_jobs(factory, spec)
        except DBAPIError as exc:
            what = "review tasks" if labels else "jobs"
            raise CliError(f"cannot read {what} from {engine.url.render_as_string()}: {exc.orig}") from None
        with tqdm(total=total, unit="task" if labels else "job", disable=args.no_progress, file=sys.stderr) as bar:
            result = export(
                factory, output, options, spec=spec, images=images, with_ids=args.with_ids,
                batch_size=args.batch_size, progress=bar.update,
            )
    finally:
        engine.dispose()
    m = result.manifest
    unit = "tasks" if labels else "jobs"
    print(
        f"{m['rows']} {args.format} rows from {m[unit + '_used']} of {m[unit + '_read']} {unit} "
        f"({m['duplicates_removed']} duplicates removed) -> {output}; manifest {result.manifest_path}",
        file=sys.stderr,
    )
    return 0
