"""What one node costs the store and the worker's Python, without a broker: statements, commits and CPU per node.

    python -m benchmarks.node_cost                 # 20 jobs on a scratch Postgres database
    python -m benchmarks.node_cost --jobs 5 --profile /tmp/node.prof    # plus a cProfile of the task bodies
    python -m benchmarks.node_cost --history 40    # after 40 uncounted jobs and ANALYZE (plans of a used database)

The Celery task bodies (``workers.tasks``) run in this process, in the order their messages were published (a
local FIFO stands in for the broker), against the real Postgres of ``ECOALIGN_TEST_PG_URL``. The model is an
instant in-process stub (fixed text and usage) and the evaluator the heuristic one, so what is counted is the
orchestration a node costs: claim, lineage read, record, score, settlement, verdict, controller and publishing.
CPU is this process's time (``time.process_time``); Postgres' own CPU is not in it. It complements
``benchmarks/pipeline.py``, which measures the same path end to end through Redis and worker processes.
"""

from __future__ import annotations

import argparse
import cProfile
import time
from collections import Counter, deque
from typing import Any

from sqlalchemy import event, text

from benchmarks.pipeline import POLICY, REQUEST, bench_database
from ecoalign.engine.policy import Policy
from ecoalign.evaluators.heuristic import HeuristicNodeEvaluator, HeuristicScanner
from ecoalign.providers.base import Completion, Usage
from ecoalign.runtime import controller
from ecoalign.runtime.requests import request_from_messages
from ecoalign.runtime.services import Services
from ecoalign.settings import Settings
from ecoalign.store.db import make_engine, run_in_transaction, session_factory


class InstantModel:
    """A chat model that answers at once (the orchestration is what is measured)."""

    model_id = "instant"

    def complete(self, messages: list[dict], **_: Any) -> Completion:
        return Completion(
            text="Use the spare key or call a locksmith you trust; check the shed's warranty first.",
            model="instant",
            usage=Usage(prompt_tokens=60, completion_tokens=40),
            finish_reason="stop",
            latency_s=0.0,
        )

    def check(self) -> None:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--history", type=int, default=0, metavar="JOBS",
                        help="run this many jobs first, uncounted, and ANALYZE: plans as on a database in use")
    parser.add_argument("--profile", default=None, help="write a cProfile of the task bodies here")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=V", help="a Settings field")
    args = parser.parse_args(argv)

    from workers import process, tasks

    with bench_database() as url:
        engine = make_engine(url, pool_size=2)
        factory = session_factory(engine)
        counts: Counter[str] = Counter()

        @event.listens_for(engine, "before_cursor_execute")
        def _count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            counts["statements"] += 1
            counts[statement.split(None, 1)[0].upper()] += 1

        @event.listens_for(engine, "commit")
        def _commit(conn: Any) -> None:
            counts["commits"] += 1

        overrides = dict(item.split("=", 1) for item in args.set)
        settings = Settings(db_url=url, evaluator="heuristic", **overrides)  # type: ignore[arg-type]
        process.use(
            settings_=settings,
            factory=factory,
            services_=Services(InstantModel(), HeuristicScanner(), HeuristicNodeEvaluator()),
        )
        queue: deque[tuple[Any, tuple]] = deque()
        published: Counter[str] = Counter()
        originals = {}
        for task in (tasks.advance_job, tasks.scan_root, tasks.generate_node):
            originals[task.name] = task.apply_async

            def _publish(args_: tuple, *_: Any, _task: Any = task, **__: Any) -> None:
                published[_task.name.rsplit(".", 1)[-1]] += 1
                queue.append((_task, tuple(args_)))

            task.apply_async = _publish  # type: ignore[method-assign]

        request = request_from_messages([{"role": "user", "content": REQUEST}], max_image_bytes=1 << 20)

        def submit(n: int) -> list[str]:
            ids = [
                run_in_transaction(factory, lambda s: controller.submit(s, request, Policy.from_dict(POLICY))[0])
                for _ in range(n)
            ]
            queue.extend((tasks.advance_job, (job_id,)) for job_id in ids)
            return ids

        def drain() -> int:
            """Run the queued task bodies, and those they publish, until none is left; how many ran."""
            ran = 0
            while queue:
                task, task_args = queue.popleft()
                task.run(*task_args)
                ran += 1
            return ran

        if args.history:  # earlier jobs in the tables and fresh statistics: the plans a used database gets
            submit(args.history)
            drain()
            with engine.connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()
        job_ids = submit(args.jobs)
        counts.clear()
        published.clear()
        profiler = cProfile.Profile(time.process_time) if args.profile else None  # CPU, not waits
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        tasks_run = drain()
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        for task in (tasks.advance_job, tasks.scan_root, tasks.generate_node):
            task.apply_async = originals[task.name]  # type: ignore[method-assign]
        with engine.connect() as conn:
            nodes = conn.execute(text("SELECT count(*) FROM nodes WHERE kind <> 'root' AND model <> 'template' "
                                      "AND model IS NOT NULL AND model <> '' AND job_id = ANY(:ids)"),
                                 {"ids": job_ids}).scalar_one()
            states = dict(conn.execute(text("SELECT status, count(*) FROM jobs WHERE id = ANY(:ids) GROUP BY status"),
                                       {"ids": job_ids}).all())
        process.reset()
        engine.dispose()

    per = max(nodes, 1)
    print(f"jobs: {args.jobs} ({states}); generated nodes: {nodes}; tasks run: {tasks_run} {dict(published)}")
    print(f"per generated node: {counts['statements'] / per:.1f} statements, {counts['commits'] / per:.2f} commits, "
          f"{1000 * cpu / per:.2f} ms CPU, {1000 * wall / per:.2f} ms wall, {tasks_run / per:.2f} tasks")
    kinds = {k: round(v / per, 2) for k, v in sorted(counts.items()) if k not in ("statements", "commits")}
    print(f"statements by verb per node: {kinds}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
