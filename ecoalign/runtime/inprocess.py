"""The in-process driver: runs a job's nodes on a thread pool against the store, no broker needed.

It is the embedded default (SQLite file, offline models) and the reference for the Celery runtime: both call
the same ``steps`` functions; only the transport between controller and node work differs.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from sqlalchemy.orm import Session, sessionmaker

from ecoalign.runtime import steps
from ecoalign.runtime.services import Services


class StuckJob(RuntimeError):
    """The engine waits for nodes that nothing is running (a bug, never a normal end)."""


def run_job(
    factory: sessionmaker[Session], services: Services, job_id: str, *, workers: int = 4, lease_s: float = 300
) -> str:
    """Drive the job to a terminal state; returns that status. Node failures end up in the trace, not here."""
    submitted: set[str] = set()
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ecoalign-node") as pool:
        running: dict[Future[None], str] = {}
        while True:
            decision = steps.advance(factory, job_id)
            if decision.finished:
                return decision.status
            for node_id in decision.run:
                if node_id not in submitted:
                    submitted.add(node_id)
                    running[pool.submit(steps.run_node, factory, services, job_id, node_id, lease_s=lease_s)] = node_id
            if not running:
                raise StuckJob(f"job {job_id}: the engine waits but no node is running")
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                node_id = running.pop(future)
                try:
                    future.result()
                except Exception as exc:  # an evaluator bug or a store error: fail the node, keep the job going
                    steps.fail_node(factory, job_id, node_id, None, f"{type(exc).__name__}: {exc}")
