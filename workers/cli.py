"""``ecoalign worker`` and ``ecoalign beat``: the Celery worker and scheduler with this project's defaults.

``celery -A workers.app worker`` and ``celery -A workers.app beat`` work as well; these commands only pick the
pool that suits the queues (threads for the I/O-bound model queue, prefork for the CPU-bound ones).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import Any

from ecoalign.queue.names import CONTROL_QUEUE, MODEL_QUEUE, QUEUES, SCORE_QUEUE

POOLS = ("prefork", "threads", "solo", "gevent", "eventlet")
MODEL_THREADS = 16


def default_pool(queues: list[str]) -> str:
    """Threads when the worker only calls the model (waiting on I/O), else processes (evaluators use the CPU)."""
    return "threads" if set(queues) == {MODEL_QUEUE} else "prefork"


def worker_argv(args: argparse.Namespace) -> list[str]:
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    unknown = sorted(set(queues) - set(QUEUES))
    if unknown:
        raise SystemExit(f"ecoalign worker: unknown queue(s) {', '.join(unknown)}; known: {', '.join(QUEUES)}")
    pool = args.pool or default_pool(queues)
    concurrency = args.concurrency or (MODEL_THREADS if pool in ("threads", "gevent", "eventlet") else os.cpu_count())
    argv = [
        "worker",
        f"--queues={','.join(queues)}",
        f"--pool={pool}",
        f"--concurrency={concurrency}",
        f"--loglevel={args.loglevel}",
        "--without-gossip",
        "--without-mingle",
    ]
    if args.hostname:
        argv.append(f"--hostname={args.hostname}")
    return argv


def exit_status(code: object) -> int:
    """The process's exit status from what ``Celery.start`` returned: the worker's own exit code (Celery sets a
    non-zero one after an unrecoverable error), 0 when it returned nothing. Dropping it made a worker that died of
    a fault exit 0, which a supervisor restarting on failure only (systemd ``Restart=on-failure``) ignores."""
    return code if isinstance(code, int) else 0


def cmd_worker(args: argparse.Namespace) -> int:
    from workers.app import app

    return exit_status(app.start(worker_argv(args)))


def cmd_beat(args: argparse.Namespace) -> int:
    from workers.app import app

    return exit_status(app.start(["beat", f"--loglevel={args.loglevel}", f"--schedule={args.schedule}"]))


def add_worker_parser(sub: Any) -> None:
    p = sub.add_parser("worker", help="run a Celery worker (controller, model and/or scoring queues)")
    p.add_argument("--queues", default=",".join(QUEUES),
                   help=f"comma-separated queues (default: all): {CONTROL_QUEUE}, {MODEL_QUEUE}, {SCORE_QUEUE}")
    p.add_argument("--concurrency", type=int, default=None,
                   help=f"pool size (default: {MODEL_THREADS} threads for the model queue alone, else CPU count)")
    p.add_argument("--pool", choices=POOLS, default=None,
                   help="execution pool (default: threads for the model queue alone, else prefork)")
    p.add_argument("--hostname", default=None, help="Celery node name, e.g. model@%%h")
    p.add_argument("--loglevel", default="INFO")
    p.set_defaults(func=cmd_worker)


def add_beat_parser(sub: Any) -> None:
    p = sub.add_parser("beat", help="run the Celery beat scheduler (the reaper); run exactly one")
    p.add_argument("--schedule", default=os.path.join(tempfile.gettempdir(), "ecoalign-celerybeat-schedule"),
                   help="beat's state file")
    p.add_argument("--loglevel", default="INFO")
    p.set_defaults(func=cmd_beat)
