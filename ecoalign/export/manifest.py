"""``FILE.manifest.json``: what an export holds and how it was made (counts, evaluator ids, filters, dedup)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ecoalign import __version__
from ecoalign.export.formats import Tally
from ecoalign.store.exports import JobFilter
from ecoalign.store.reviews import LabelFilter

# Where a review-labels export's labels come from (the manifest says it, so a training set names its annotators).
LABEL_SOURCE = "human review queue: review_decisions, the latest verdict of each decided review_tasks row"


def manifest_path(output: Path) -> Path:
    return output.with_name(output.name + ".manifest.json")


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def build_manifest(
    *,
    output: Path,
    fmt: str,
    columns: list[str],
    images: str,
    text_content: bool,
    spec: JobFilter | LabelFilter,
    tally: Tally,
    rows: int,
    duplicates: int,
    image_files: int,
    dedup_bytes: int,
    elapsed_s: float,
) -> dict[str, Any]:
    unit = "tasks" if isinstance(spec, LabelFilter) else "jobs"  # what was read: review tasks, or jobs
    manifest: dict[str, Any] = {
        "file": output.name,
        "format": fmt,
        "file_format": output.suffix.lstrip("."),
        "columns": columns,
        "content": "text" if text_content else "parts",
        "images": images,
        "rows": rows,
        "rows_by_source": dict(sorted(tally.rows_by_source.items())),
        "duplicates_removed": duplicates,
        f"{unit}_read": tally.jobs_read,
        f"{unit}_used": tally.jobs_used,
        f"{unit}_skipped": dict(sorted(tally.skipped.items())),
        "evaluators": dict(sorted(tally.evaluators.items())),
        "image_files_written": image_files,
        "filters": {k: _plain(v) for k, v in asdict(spec).items() if v is not None},
        "dedup": {
            "digest": "blake2b-64 of the row's columns and image sha256s",
            "table_bytes": dedup_bytes,
            "false_duplicate_probability": rows * rows / 2.0**65,
        },
        "elapsed_s": round(elapsed_s, 3),
        "created_at": datetime.now(UTC).isoformat(),
        "ecoalign_version": __version__,
    }
    if isinstance(spec, LabelFilter):
        manifest["labels"] = {
            "source": LABEL_SOURCE,
            "label": "true when the verdict is flag or block (unsafe), false for allow",
            "verdicts_by_reviewer": dict(sorted(tally.reviewers.items())),  # API key ids of the reviewers
        }
    return manifest


def write_manifest(output: Path, manifest: dict[str, Any]) -> Path:
    path = manifest_path(output)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path
