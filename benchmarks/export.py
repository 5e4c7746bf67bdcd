"""Training-data export at scale: rows/s and the export process's peak RSS.

    python -m benchmarks.export                       # 1,000,000 DPO rows (250,000 jobs × 4 pruned siblings)
    python -m benchmarks.export --rows 200000 --format kto --output-format jsonl

Fills a throw-away Postgres database (on ``ECOALIGN_TEST_PG_URL``'s server; dropped afterwards)
with synthetic finished jobs by COPY: each job is a root, the chosen safe answer and ``--siblings`` pruned unsafe
answers (texts differ per job, so nothing is a duplicate), then runs ``ecoalign export`` in a child process and
reports its wall time, rows/s and peak RSS (``getrusage`` of the child: the kernel's high-water mark, not a sample).
``--db URL`` exports from an existing database instead of filling one (e.g. a SQLite file).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from ecoalign.engine.graph import node_id
from ecoalign.store import migrate

PG_BASE = os.environ.get("ECOALIGN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
POLICY = json.dumps({"budget": 6000, "tau": 0.5, "cost_weight": 0.05})
TOPICS = ("sleep", "gardening", "budgeting", "cycling", "cooking", "reading", "running", "painting")


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def temporary_database() -> Iterator[str]:
    name = f"ecoalign_bench_export_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(_libpq(PG_BASE), autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_BASE).set(database=name).render_as_string(hide_password=False)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def fill(url: str, jobs: int, siblings: int) -> float:
    """``jobs`` finished jobs by COPY; returns seconds taken."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    with psycopg.connect(_libpq(url)) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY jobs (id, status, decision, strategy, request, request_fingerprint, policy, response, path, "
            "path_safety, utility, model_calls, budget_total, budget_spent, budget_reserved, created_at, "
            "finished_at, updated_at, version) FROM STDIN"
        ) as copy:
            for j in range(jobs):
                job_id = f"bench{j:011d}"
                root = node_id(job_id, "root", ())
                chosen = node_id(job_id, "answer", (root,), 0)
                question = f"Question {j}: what are good habits for {TOPICS[j % len(TOPICS)]}?"
                request = json.dumps({"messages": [{"role": "user", "content": [{"type": "text", "text": question}]}]})
                answer = f"Answer {j}: start small, keep a routine and track your progress each week."
                copy.write_row((
                    job_id, "succeeded", "answered", "best_of_n", request, "", POLICY, answer,
                    json.dumps([root, chosen]), 0.95, 0.6, 1 + siblings, 6000, 300, 0, now, now, now, 1,
                ))
        with cur.copy(
            "COPY nodes (id, job_id, kind, depth, ordinal, action, status, text, model, evaluator, safety, utility, "
            "categories, tokens, est_tokens, prune_reason, created_at, finished_at) FROM STDIN"
        ) as copy:
            for j in range(jobs):
                job_id = f"bench{j:011d}"
                root = node_id(job_id, "root", ())
                copy.write_row((root, job_id, "root", 0, 0, "scan", "done", f"Question {j}", "", "bench-scan", 0.98,
                                0.0, "{}", 0, 0, None, now, now))
                answer = f"Answer {j}: start small, keep a routine and track your progress each week."
                copy.write_row((node_id(job_id, "answer", (root,), 0), job_id, "answer", 1, 0, "answer", "done",
                                answer, "bench-model", "bench-evaluator@1", 0.95, 0.6, "{}", 50, 60, None, now, now))
                for k in range(1, siblings + 1):
                    copy.write_row((
                        node_id(job_id, "answer", (root,), k), job_id, "answer", 1, k, "answer", "pruned",
                        f"Unsafe answer {j}.{k}: here is how to hurt someone badly.", "bench-model",
                        "bench-evaluator@1", 0.1, 0.3, '{"violence": 0.9}', 50, 60, "path safety 0.100 < tau 0.5",
                        now, now,
                    ))
        with cur.copy("COPY edges (job_id, parent_id, child_id) FROM STDIN") as copy:
            for j in range(jobs):
                job_id = f"bench{j:011d}"
                root = node_id(job_id, "root", ())
                for k in range(siblings + 1):
                    copy.write_row((job_id, root, node_id(job_id, "answer", (root,), k)))
        conn.commit()
        cur.execute("ANALYZE")
    return time.perf_counter() - started


def run_export(url: str, fmt: str, output: Path) -> tuple[float, int, dict]:
    """``ecoalign export`` in a child process: (wall seconds, peak RSS bytes, manifest)."""
    command = [sys.executable, "-m", "ecoalign", "export", "--format", fmt, "--db", url, "-o", str(output),
               "--no-progress", "--overwrite"]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    elapsed = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: KiB, the largest child so far
    manifest = json.loads(output.with_name(output.name + ".manifest.json").read_text())
    return elapsed, peak_kib * 1024, manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="DPO rows to produce (jobs = rows / siblings)")
    parser.add_argument("--siblings", type=int, default=4, help="pruned unsafe answers per job (DPO pairs per job)")
    parser.add_argument("--format", default="dpo", choices=["dpo", "sft", "kto"])
    parser.add_argument("--output-format", default="parquet", choices=["parquet", "jsonl"])
    parser.add_argument("--db", help="export from this database instead of filling a temporary one")
    args = parser.parse_args(argv)
    jobs = math.ceil(args.rows / args.siblings)
    with tempfile.TemporaryDirectory(prefix="ecoalign-export-bench-") as tmp:
        output = Path(tmp) / f"bench.{args.output_format}"
        if args.db:
            elapsed, peak, manifest = run_export(args.db, args.format, output)
            fill_s = 0.0
        else:
            with temporary_database() as url:
                migrate.upgrade(url)
                fill_s = fill(url, jobs, args.siblings)
                print(f"filled {jobs} jobs ({jobs * (args.siblings + 2)} nodes) in {fill_s:.1f} s", flush=True)
                elapsed, peak, manifest = run_export(url, args.format, output)
        size = output.stat().st_size
        rows = manifest["rows"]
        print(
            f"export --format {args.format} -> {args.output_format}: {rows} rows from {manifest['jobs_read']} jobs "
            f"in {elapsed:.1f} s = {rows / elapsed:,.0f} rows/s; peak RSS {peak / 2**20:.0f} MiB; "
            f"file {size / 2**20:.1f} MiB; dedup table {manifest['dedup']['table_bytes'] / 2**20:.0f} MiB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
